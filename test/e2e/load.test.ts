import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, onTestFinished, vi } from 'vitest';
import { isAlive, runClient, spawnBin, startBroker, type BrokerHandle, type Proc } from '../helpers/processes.js';
import { parseResults } from '../helpers/report.js';

/** A scratch directory removed when the test ends. */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'testcloud-load-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Replaces a --load-readings file atomically, so the worker never reads half of it. */
function writeReadings(file: string, readings: Record<string, number>): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(readings));
  renameSync(`${file}.tmp`, file);
}

/** A worker whose commands can tell where they ran: $WHO is its name. */
async function startNamedWorker(workers: string, name: string, args: string[] = []): Promise<Proc> {
  const proc = spawnBin('testworker', ['--broker', workers, '--name', name, ...args], { env: { WHO: name } });
  await proc.waitForLine(/connected to broker/);
  return proc;
}

/** Lines of a file some command appends to, once it has any. */
async function waitForLines(file: string, count = 1): Promise<string[]> {
  return vi.waitFor(
    () => {
      const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
      expect(lines.length).toBeGreaterThanOrEqual(count);
      return lines;
    },
    { timeout: 10_000, interval: 20 },
  );
}

/** The state letter of /proc/PID/stat: R running, S sleeping, T stopped… */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** processState, or "gone" for a process that has exited. */
function stateOf(pid: number): string {
  return isAlive(pid) ? processState(pid) : 'gone';
}

const lines = (commands: string[]) => commands.map((cmd) => `${cmd}\n`).join('');

/** The one result a `testclient --json` run printed. */
function jsonResult(stdout: string): { status: string; reason: string | null; exitcode: number | null; stopped: string | null; stdout: string; duration: number; paused?: number } {
  const results = stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string })
    .filter((line) => line.type === 'result');
  expect(results, stdout).toHaveLength(1);
  return results[0] as ReturnType<typeof jsonResult>;
}

/**
 * Returns once more than `timeout` has passed, measured by the timeouts under test themselves:
 * a witness worker runs a command that never ends with that --timeout, and it has timed out.
 * (The worker holding the paused job withholds its slots, so the witness gets the command.)
 */
async function outlast(broker: BrokerHandle, timeout: string): Promise<void> {
  await startNamedWorker(broker.workers, 'witness');
  const witness = await runClient(['--broker', broker.clients, '--json', '--timeout', timeout], 'sleep 100 # witness\n');
  expect(jsonResult(witness.stdout), witness.proc.describe()).toMatchObject({ stopped: 'timeout', worker: 'witness' });
}

/**
 * A broker and a worker `w` with --pause-free-mem 500 on scripted readings, running `cmd` from a
 * `testclient --json` with `args`; resolves once the command runs, its first line (its shell's
 * pid, in `dir`/pid) written.
 */
async function startPausable(dir: string, cmd: (pidFile: string) => string, args: string[]) {
  const readings = join(dir, 'readings.json');
  const pidFile = join(dir, 'pid');
  writeReadings(readings, { freeMem: 4000, totalMem: 8000 });
  const broker = await startBroker();
  const worker = await startNamedWorker(broker.workers, 'w', ['--pause-free-mem', '500', '--load-readings', readings, '--load-interval', '50ms']);
  const client = spawnBin('testclient', ['--broker', broker.clients, '--json', ...args], { input: `${cmd(pidFile)}\n` });
  const [pid] = (await waitForLines(pidFile)).map(Number);
  return {
    broker,
    worker,
    client,
    pid: pid!,
    /** Memory runs short: the guard pauses the job, and the broker hears that w offers nothing. */
    async pause() {
      writeReadings(readings, { freeMem: 300, totalMem: 8000 });
      await worker.waitForLine(/paused job \d+ \(pid \d+\)/);
      await broker.proc.waitForLine(/worker w is paused \(offers 0 of 1 slot/);
    },
    async resume() {
      writeReadings(readings, { freeMem: 4000, totalMem: 8000 });
      await worker.waitForLine(/resumed job \d+ \(pid \d+\) after \d+ ms paused/);
    },
  };
}

describe('load limits: a worker takes work only while its host has room', () => {
  it('gives an overloaded worker no job while another takes them all, and work again once its load recovers', async () => {
    const dir = scratch();
    const readings = join(dir, 'readings.json');
    writeReadings(readings, { load: 5 });
    const broker = await startBroker();
    await startNamedWorker(broker.workers, 'hot', ['-c', '2', '--max-load', '1', '--load-readings', readings, '--load-interval', '50ms']);
    await broker.proc.waitForLine(/worker hot is withheld \(offers 0 of 2 slots; load 5,/);
    await startNamedWorker(broker.workers, 'cool', ['-c', '2']);

    const first = ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => `echo ${x} on $WHO`);
    const busy = await runClient(['--broker', broker.clients], lines(first));
    expect(busy.code, busy.proc.describe()).toBe(0);
    const printed = parseResults(busy.stdout);
    expect([...printed.values()].map((r) => r.body.trim().split(' on ')[1])).toEqual(Array(6).fill('cool'));
    expect(broker.proc.stderr).not.toMatch(/handed back/);

    writeReadings(readings, { load: 0.5 });
    await broker.proc.waitForLine(/worker hot is idle \(offers 2 of 2 slots/);
    // Four slow jobs for four free slots: the broker spreads them over both workers.
    const second = [1, 2, 3, 4].map((n) => `sleep 0.2; echo ${n} on $WHO`);
    const recovered = await runClient(['--broker', broker.clients], lines(second));
    expect(recovered.code, recovered.proc.describe()).toBe(0);
    const where = [...parseResults(recovered.stdout).values()].map((r) => r.body.trim().split(' on ')[1]);
    expect(where.filter((w) => w === 'hot')).toHaveLength(2);
  });

  it('pauses a running job when memory runs short (its processes are stopped) and resumes it on recovery with its full output', async () => {
    const dir = scratch();
    const readings = join(dir, 'readings.json');
    const pidFile = join(dir, 'pid');
    writeReadings(readings, { freeMem: 4000, totalMem: 8000 });
    const broker = await startBroker();
    const worker = await startNamedWorker(broker.workers, 'w', ['--pause-free-mem', '500', '--load-readings', readings, '--load-interval', '50ms']);
    const cmd = `echo $$ > ${pidFile}; i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.05; done`;
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: `${cmd}\n` });
    const [pid] = (await waitForLines(pidFile)).map(Number);

    writeReadings(readings, { freeMem: 300, totalMem: 8000 });
    const paused = await worker.waitForLine(/paused job \d+ \(pid (\d+)\)/);
    expect(Number(paused[1])).toBe(pid);
    // SIGSTOP takes effect asynchronously on a process that is running on another CPU.
    await vi.waitFor(() => expect(processState(pid!)).toBe('T'), { timeout: 2000, interval: 10 });
    await broker.proc.waitForLine(/worker w is paused \(offers 0 of 1 slot/);

    writeReadings(readings, { freeMem: 4000, totalMem: 8000 });
    await worker.waitForLine(/resumed job \d+ \(pid \d+\) after \d+ ms paused/);
    expect(await client.waitForExit(), client.describe()).toEqual({ code: 0, signal: null });
    const result = parseResults(client.stdout).get(cmd)!;
    expect(result.body).toBe(`${Array.from({ length: 40 }, (_, i) => `line ${i}\n`).join('')}\n`);
    expect(result.reason).toMatch(/^paused \d+(\.\d+)?m?s for memory$/);
  });

  it('kills the newest job below --kill-free-mem and hands it back: another worker completes it and it is printed once', async () => {
    const dir = scratch();
    const readings = join(dir, 'readings.json');
    const pidFile = join(dir, 'pids');
    writeReadings(readings, { freeMem: 4000, totalMem: 8000 });
    const broker = await startBroker();
    const victim = await startNamedWorker(broker.workers, 'victim', ['--kill-free-mem', '100', '--load-readings', readings, '--load-interval', '50ms']);
    const cmd = `echo $$ >> ${pidFile}; sleep 0.5; echo completed on $WHO`;
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: `${cmd}\n` });
    const [killedPid] = (await waitForLines(pidFile)).map(Number);
    await startNamedWorker(broker.workers, 'rescuer');

    writeReadings(readings, { freeMem: 50, totalMem: 8000 });
    await victim.waitForLine(/killing job \d+, the newest/);
    await broker.proc.waitForLine(/worker victim handed back 1 job: killed for memory/);
    expect(await client.waitForExit(), client.describe()).toEqual({ code: 0, signal: null });
    const printed = parseResults(client.stdout);
    expect([...printed.keys()]).toEqual([cmd]);
    expect(printed.get(cmd)!.body).toBe('completed on rescuer\n\n');
    expect(client.stdout).not.toMatch(/completed on victim/);
    expect(await waitForLines(pidFile, 2)).toHaveLength(2);
    expect(isAlive(killedPid!)).toBe(false);
  });

  it('finishes the running job on SIGTERM: its result arrives, the worker exits 0 and the broker requeues nothing', async () => {
    const dir = scratch();
    const marker = join(dir, 'started');
    const broker = await startBroker();
    const worker = await startNamedWorker(broker.workers, 'leaver');
    const cmd = `echo go > ${marker}; sleep 0.5; echo finished`;
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: `${cmd}\n` });
    await waitForLines(marker);

    worker.kill('SIGTERM');
    await broker.proc.waitForLine(/worker leaver is draining \(offers 0 of 1 slot/);
    expect(await client.waitForExit(), client.describe()).toEqual({ code: 0, signal: null });
    expect(parseResults(client.stdout).get(cmd)!.body).toBe('finished\n\n');
    expect(await worker.waitForExit(), worker.describe()).toEqual({ code: 0, signal: null });
    const left = await broker.proc.waitForLine(/worker leaver left: (.*)/);
    expect(left[1]).toMatch(/^worker received SIGTERM \(0 workers left\)$/);
    expect(broker.proc.stderr).not.toMatch(/requeued|handed back/);
  });
});

describe('timeouts count only the time a job may run, not the time it is paused for memory', () => {
  it.each(['--timeout', '--idle-timeout'])('lets a job paused for memory for longer than its %s 1s finish, and shows the pause in its result', async (flag) => {
    const dir = scratch();
    // 0.6 s of sleeps, silent for 0.3 s at a time. (A sleep whose end passed while it was
    // stopped returns on SIGCONT: the second one is what runs after the pause.)
    const job = await startPausable(dir, (pidFile) => `echo $$ > ${pidFile}; sleep 0.3; echo half; sleep 0.3; echo done`, [flag, '1s']);
    await job.pause();
    await outlast(job.broker, '1s');
    expect(stateOf(job.pid), 'the job is still paused, not stopped by its timeout').toBe('T');
    await job.resume();

    expect(await job.client.waitForExit(), job.client.describe()).toEqual({ code: 0, signal: null });
    const result = jsonResult(job.client.stdout);
    expect(result).toMatchObject({ status: 'passed', exitcode: 0, stopped: null, stdout: 'half\ndone\n' });
    expect(result.paused).toBeGreaterThanOrEqual(1000);
  });

  it('still kills a job paused for memory whose running time, the pause left out, passes its --timeout', async () => {
    const dir = scratch();
    const job = await startPausable(dir, (pidFile) => `echo $$ > ${pidFile}; sleep 100`, ['--timeout', '1s']);
    await job.pause();
    await outlast(job.broker, '1s');
    expect(stateOf(job.pid), 'the job is still paused, not stopped by its timeout').toBe('T');
    await job.resume();

    expect(await job.client.waitForExit(), job.client.describe()).toEqual({ code: 1, signal: null });
    const result = jsonResult(job.client.stdout);
    expect(result).toMatchObject({ status: 'failed', reason: 'timed out', stopped: 'timeout' });
    expect(result.paused).toBeGreaterThanOrEqual(1000);
    // It ran its full second besides the pause (the worker's clocks and the guard's differ by a few ms).
    expect(result.duration - result.paused!).toBeGreaterThanOrEqual(950);
    expect(isAlive(job.pid)).toBe(false);
  });
});

describe('--nice', () => {
  it('runs commands, and the processes they start, at that niceness', async () => {
    const broker = await startBroker();
    await startNamedWorker(broker.workers, 'nice', ['--nice', '7']);
    // Field 19 of /proc/PID/stat is the niceness: of the command's shell, and of a child of it.
    const commands = ["awk '{print $19}' /proc/$$/stat", "sh -c 'awk \"{print \\$19}\" /proc/self/stat'"];
    const run = await runClient(['--broker', broker.clients], lines(commands));
    expect(run.code, run.proc.describe()).toBe(0);
    expect([...parseResults(run.stdout).values()].map((r) => r.body)).toEqual(['7\n\n', '7\n\n']);
  });
});

describe('scheduling by free capacity and --weight', () => {
  it('sends new jobs to the idle worker rather than the busy one', async () => {
    const dir = scratch();
    const marker = join(dir, 'started');
    const broker = await startBroker();
    await startNamedWorker(broker.workers, 'busy', ['-c', '2']);
    const long = spawnBin('testclient', ['--broker', broker.clients], { input: `echo go > ${marker}; sleep 1; echo long on $WHO\n` });
    await waitForLines(marker);
    await startNamedWorker(broker.workers, 'idle', ['-c', '4']);

    const run = await runClient(['--broker', broker.clients], lines(['echo x on $WHO', 'echo y on $WHO']));
    expect(run.code, run.proc.describe()).toBe(0);
    expect([...parseResults(run.stdout).values()].map((r) => r.body).sort()).toEqual(['x on idle\n\n', 'y on idle\n\n']);
    expect(await long.waitForExit()).toEqual({ code: 0, signal: null });
    expect(long.stdout).toMatch(/long on busy/);
  });

  it('prefers the worker with the higher --weight among equally free ones', async () => {
    const broker = await startBroker();
    await startNamedWorker(broker.workers, 'light', ['-c', '2']);
    await startNamedWorker(broker.workers, 'heavy', ['-c', '2', '--weight', '3']);
    const run = await runClient(['--broker', broker.clients], lines(['echo x on $WHO', 'echo y on $WHO']));
    expect(run.code, run.proc.describe()).toBe(0);
    expect([...parseResults(run.stdout).values()].map((r) => r.body).sort()).toEqual(['x on heavy\n\n', 'y on heavy\n\n']);
  });
});
