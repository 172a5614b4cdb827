import { describe, expect, it } from 'vitest';
import { runClient, startBroker, startWorker } from '../helpers/processes.js';

describe('flow control between client and broker', () => {
  it("keeps within the broker's --max-queued even when one read of stdin holds far more commands", async () => {
    const broker = await startBroker(['--max-queued', '10']);
    await startWorker(broker.workers, ['-c', '2']);
    const commands = Array.from({ length: 300 }, (_, i) => `echo ${i}`).join('\n');
    const run = await runClient(['-b', broker.clients, '--quiet', '--window', '50'], `${commands}\n`);
    expect(run.code, run.proc.describe()).toBe(0);
    expect(run.stdout).toMatch(/Ran 300 commands/);
    expect(run.stderr).not.toMatch(/refused/);
  });

  it('accepts durations that are not whole milliseconds (the wire carries integers)', async () => {
    const patient = await runClient(['--local', '1', '--timeout', '2.0005s', '--idle-timeout', '1.5s'], 'echo fine\n');
    expect(patient.code, patient.proc.describe()).toBe(0);
    expect(patient.stdout).toContain('fine');
  });
});
