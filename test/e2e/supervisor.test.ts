import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, onTestFinished, vi } from 'vitest';
import { isAlive, runClient, spawnBin, startBroker, type Proc } from '../helpers/processes.js';
import { parseResults } from '../helpers/report.js';

/** `testworker --instances N …`; resolves once every instance is connected to the broker. */
async function startSupervisor(workers: string, instances: number, args: string[] = []): Promise<Proc> {
  const proc = spawnBin('testworker', ['--broker', workers, '--instances', String(instances), ...args]);
  await proc.waitFor(() => (connected(proc) >= instances ? true : undefined), `${instances} instances connected`);
  return proc;
}

function connected(proc: Proc): number {
  return proc.stderr.match(/connected to broker/g)?.length ?? 0;
}

/** Every pid the supervisor has started, by its "instance N started as pid P" lines. */
function instancePids(proc: Proc): number[] {
  return [...proc.stderr.matchAll(/instance \d+ started as pid (\d+)/g)].map((m) => Number(m[1]));
}

const lines = (commands: string[]) => commands.map((cmd) => `${cmd}\n`).join('');

describe('testworker --instances: a supervisor keeps N workers running', () => {
  it('completes 10 jobs with --max-jobs 3 and 2 instances, replacing each worker as it recycles, and leaves no process behind', async () => {
    const broker = await startBroker();
    const supervisor = await startSupervisor(broker.workers, 2, ['--max-jobs', '3']);
    const commands = Array.from({ length: 10 }, (_, i) => `echo job ${i}`);
    const run = await runClient(['--broker', broker.clients], lines(commands));
    expect(run.code, `${run.proc.describe()}\n${supervisor.describe()}`).toBe(0);
    expect([...parseResults(run.stdout).keys()].sort()).toEqual([...commands].sort());

    // 10 jobs at 3 per worker: at least 4 workers, so at least 2 replacements.
    const recycled = supervisor.stderr.match(/exited with code 0 \(recycling: took 3 job\(s\) \(--max-jobs 3\)\); restarting it/g) ?? [];
    expect(recycled.length, supervisor.describe()).toBeGreaterThanOrEqual(2);
    expect(broker.proc.stderr).not.toMatch(/requeued|lost/);

    supervisor.kill('SIGTERM');
    expect(await supervisor.waitForExit(), supervisor.describe()).toEqual({ code: 0, signal: null });
    expect(supervisor.stderr).toMatch(/every instance has exited/);
    const pids = instancePids(supervisor);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    expect(pids.filter(isAlive)).toEqual([]);
  });

  it('restarts an instance killed with SIGKILL, and the run completes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'testcloud-supervisor-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const started = join(dir, 'started');
    // A short heartbeat so that the broker notices the dead worker (and requeues its job) quickly.
    const broker = await startBroker(['--heartbeat', '200ms']);
    const supervisor = await startSupervisor(broker.workers, 2);
    const [victim] = instancePids(supervisor);
    const commands = [1, 2, 3, 4].map((n) => `echo ${n} >> ${started}; sleep 0.3; echo done ${n}`);
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: lines(commands) });
    await vi.waitFor(() => expect(existsSync(started) && readFileSync(started, 'utf8').trim().split('\n').length >= 2).toBe(true), { timeout: 10_000, interval: 20 });

    process.kill(victim!, 'SIGKILL');
    await supervisor.waitForLine(new RegExp(`instance 1 \\(pid ${victim}\\) was killed by SIGKILL; restarting it in \\d+ ms`));
    await supervisor.waitForLine(new RegExp(`instance 1 started as pid \\d+ \\(replacing pid ${victim}, which was killed by SIGKILL\\)`));
    expect(await client.waitForExit(), `${client.describe()}\n${supervisor.describe()}`).toEqual({ code: 0, signal: null });
    const printed = parseResults(client.stdout);
    expect([...printed.keys()].sort()).toEqual([...commands].sort());

    supervisor.kill('SIGTERM');
    expect(await supervisor.waitForExit(), supervisor.describe()).toEqual({ code: 0, signal: null });
    expect(instancePids(supervisor).filter(isAlive)).toEqual([]);
  });

  it('gives up on an instance that keeps crashing after --max-restarts, and exits 1 when none is left', async () => {
    const broker = await startBroker();
    const supervisor = await startSupervisor(broker.workers, 1, ['--max-restarts', '1']);
    const [first] = instancePids(supervisor);
    process.kill(first!, 'SIGKILL');
    await supervisor.waitFor(() => (connected(supervisor) >= 2 ? true : undefined), 'the restarted instance connected');
    const second = instancePids(supervisor)[1]!;
    process.kill(second, 'SIGKILL');
    await supervisor.waitForLine(/instance 1 \(pid \d+\) was killed by SIGKILL; giving up on it after 1 restart\(s\) within a minute \(--max-restarts 1\)/);
    expect(await supervisor.waitForExit(), supervisor.describe()).toEqual({ code: 1, signal: null });
  });

  it('leaves no worker behind when the supervisor itself is killed with SIGKILL', async () => {
    const broker = await startBroker();
    const supervisor = await startSupervisor(broker.workers, 2);
    const pids = instancePids(supervisor);
    supervisor.kill('SIGKILL');
    await supervisor.waitForExit();
    // Each instance notices its IPC channel close, drains and says goodbye.
    await broker.proc.waitForLine(/left: its supervisor has gone \(0 workers left\)/);
    expect(broker.proc.stderr.match(/left: its supervisor has gone/g)).toHaveLength(2);
    await vi.waitFor(() => expect(pids.filter(isAlive)).toEqual([]), { timeout: 5000, interval: 20 });
  });

  it('drains every instance on SIGTERM: a running job finishes and is reported before they exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'testcloud-supervisor-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const started = join(dir, 'started');
    const broker = await startBroker();
    const supervisor = await startSupervisor(broker.workers, 2);
    const cmd = `echo go > ${started}; sleep 0.3; echo finished`;
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: `${cmd}\n` });
    await vi.waitFor(() => expect(existsSync(started)).toBe(true), { timeout: 10_000, interval: 20 });

    supervisor.kill('SIGTERM');
    expect(await client.waitForExit(), client.describe()).toEqual({ code: 0, signal: null });
    expect(parseResults(client.stdout).get(cmd)!.body).toBe('finished\n\n');
    expect(await supervisor.waitForExit(), supervisor.describe()).toEqual({ code: 0, signal: null });
    expect(supervisor.stderr.match(/exited with code 0 \(worker received SIGTERM\)/g)).toHaveLength(2);
    expect(broker.proc.stderr).not.toMatch(/requeued/);
  });
});
