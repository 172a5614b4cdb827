import { describe, expect, it } from 'vitest';
import { hashResults } from '@testcloud/protocol';
import { randomBytes } from 'node:crypto';
import { runClient, spawnBin, startBroker, startWorker } from '../helpers/processes.js';
import { waitForNoProcessWith, waitForProcessesWith } from '../helpers/process-table.js';

interface JsonResult {
  type: 'result';
  id: number;
  cmd: string;
  exitcode: number | null;
  signal: string | null;
  stdout: string;
  stdoutEncoding: 'utf8' | 'base64';
  worker: string;
}

/** The NDJSON result records printed so far (complete lines only). */
function results(stdout: string): JsonResult[] {
  return stdout
    .split('\n')
    .slice(0, -1)
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { type: string })
    .filter((record): record is JsonResult => record.type === 'result');
}

const commands = Array.from({ length: 12 }, (_, i) => `echo chained-${i}`);
const expectedHash = hashResults(commands.map((cmd, id) => ({ id, cmd, exitcode: 0, signal: null, stdout: `${cmd.slice(5)}\n`, stdoutEncoding: 'utf8' as const })));

describe('chained brokers', () => {
  it("runs a parent broker's jobs on the workers of a broker that joined it with --upstream", async () => {
    const parent = await startBroker(['--heartbeat', '200ms']);
    const child = await startBroker(['--heartbeat', '200ms', '--upstream', parent.workers, '--upstream-name', 'site-b']);
    await child.proc.waitForLine(/joined the upstream broker/);
    await startWorker(child.workers, ['-c', '2', '--name', 'far-worker']);
    // The parent sees one worker, the child, offering the child's two slots.
    await parent.proc.waitForLine(/worker site-b is idle \(offers 2 of 2 slots\)/);

    const run = await runClient(['-b', parent.clients, '--json'], `${commands.join('\n')}\n`);
    expect(run.code, run.proc.describe()).toBe(0);
    const got = results(run.stdout);
    expect(got).toHaveLength(commands.length);
    for (const result of got) expect(result.worker).toBe('site-b/far-worker');
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!).hash).toBe(expectedHash);

    // The child still serves its own clients at the same time as the parent's.
    const local = await runClient(['-b', child.clients], 'echo local\n');
    expect(local.code).toBe(0);
    expect(local.stdout).toContain('local');
  });

  it('requeues on the parent what a downstream broker held when it dies', async () => {
    const parent = await startBroker(['--heartbeat', '200ms']);
    const child = await startBroker(['--heartbeat', '200ms', '--upstream', parent.workers, '--upstream-name', 'doomed']);
    await startWorker(child.workers, ['-c', '2', '--name', 'behind-doomed']);
    await parent.proc.waitForLine(/worker doomed is idle \(offers 2 of 2 slots\)/);
    // Long commands, so the child holds some when it is killed.
    const slow = commands.map((cmd) => `sleep 0.3; ${cmd}`);
    const client = spawnBin('testclient', ['-b', parent.clients, '--json'], { input: `${slow.join('\n')}\n` });
    await client.waitFor(() => (results(client.stdout).length >= 1 ? true : undefined), 'a first result');
    child.proc.kill('SIGKILL');
    await startWorker(parent.workers, ['-c', '2', '--name', 'near-worker']);
    await parent.proc.waitForLine(/worker doomed left: expired/);
    const exit = await client.waitForExit();
    expect(exit.code, client.describe()).toBe(0);
    const got = results(client.stdout);
    expect(got).toHaveLength(commands.length);
    expect(new Set(got.map((r) => r.id)).size).toBe(commands.length);
    expect(got.some((r) => r.worker === 'near-worker')).toBe(true);
    const hash = JSON.parse(client.stdout.trim().split('\n').pop()!).hash;
    expect(hash).toBe(hashResults(slow.map((cmd, id) => ({ id, cmd, exitcode: 0, signal: null, stdout: `${cmd.split('echo ')[1]}\n`, stdoutEncoding: 'utf8' as const }))));
  });

  it("frees the parent's slot when a job it cancels ran downstream, so the next run gets it", async () => {
    const parent = await startBroker(['--heartbeat', '200ms']);
    const child = await startBroker(['--heartbeat', '200ms', '--upstream', parent.workers, '--upstream-name', 'one-slot-site']);
    await startWorker(child.workers, ['-c', '1']);
    await parent.proc.waitForLine(/worker one-slot-site is idle \(offers 1 of 1 slot\)/);
    const marker = `chain-cancel-${randomBytes(4).toString('hex')}`;
    const first = spawnBin('testclient', ['-b', parent.clients], { input: `export M=${marker}; sleep 30\n` });
    await waitForProcessesWith(marker);
    first.kill('SIGINT');
    expect((await first.waitForExit()).code).toBe(130);
    await waitForNoProcessWith(marker);
    const second = await runClient(['-b', parent.clients], 'echo second\n');
    expect(second.code, second.proc.describe()).toBe(0);
    expect(second.stdout).toContain('second');
  });
});
