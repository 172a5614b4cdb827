import { describe, it, expect } from 'vitest';
import { runClient, spawnBin, startBroker, startWorker } from '../helpers/processes.js';
import { countResults } from '../helpers/report.js';

const BACKLOG = 200;

describe('two clients sharing one broker', () => {
  it('finishes a small job list submitted behind a long backlog while most of the backlog is still pending', async () => {
    const broker = await startBroker();
    await startWorker(broker.workers, ['--concurrency', '2']);

    const a = spawnBin('testclient', ['--broker', broker.clients], { input: 'sleep 0.05\n'.repeat(BACKLOG) });
    // A's whole backlog is at the broker once A has read all of stdin and a first result is back.
    await a.waitForLine(new RegExp(`Releasing the hounds: ${BACKLOG} commands`), 20_000);
    await a.waitFor(() => (countResults(a.stdout) >= 1 ? true : undefined), 'the first result of client A', 20_000);

    const b = await runClient(['--broker', broker.clients], [1, 2, 3, 4, 5].map((n) => `echo quick-${n}\n`).join(''));
    const aDoneWhenBExited = countResults(a.stdout);

    expect(b.code, b.proc.describe()).toBe(0);
    expect(countResults(b.stdout)).toBe(5);
    expect(a.exit, 'A exited before B').toBeUndefined();
    expect(aDoneWhenBExited, a.describe()).toBeLessThan(BACKLOG / 2);

    const aExit = await a.waitForExit(60_000);
    expect(aExit.code, a.describe()).toBe(0);
    expect(countResults(a.stdout)).toBe(BACKLOG);
    expect(a.stdout).toContain('All commands successfully executed');
  });
});
