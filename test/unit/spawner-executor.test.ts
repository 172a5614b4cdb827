import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SpawnerExecutor, prestartSpawner, type ExecOutcome, type ExecRequest } from '../../packages/worker/dist/index.js';
import { SPAWNER_SCRIPT } from '../../packages/worker/dist/spawner-script.js';
import { Marks } from '../helpers/marks.js';
import { spawnProcess } from '../helpers/processes.js';
import { processesWith, waitForNoProcessWith, waitForProcessesWith } from '../helpers/process-table.js';

type Options = ConstructorParameters<typeof SpawnerExecutor>[0];

function executor(options: Options = {}): SpawnerExecutor {
  const created = new SpawnerExecutor(options);
  onTestFinished(() => created.close());
  return created;
}

const text = (outcome: ExecOutcome) => ({ ...outcome, stdout: outcome.stdout.toString(), stderr: outcome.stderr.toString() });

function request(cmd: string, extra: Partial<ExecRequest> = {}): ExecRequest {
  return { cmd, cwd: process.cwd(), maxOutput: 1024 * 1024, ...extra };
}

/**
 * Jobs that say when they start and end (lines on a Marks pipe) and wait, between the two, until
 * the test opens their gate: which jobs run at a time is then up to the test, not to timing.
 * Jobs still waiting when the test ends (it failed) are cancelled: create the executor first,
 * so that this happens before it is closed.
 */
class GatedJobs {
  readonly marks = new Marks();
  private readonly cancelAll = new AbortController();

  constructor(names: string[]) {
    for (const name of names) execFileSync('mkfifo', [this.gate(name)]);
    onTestFinished(() => this.cancelAll.abort());
  }

  request(name: string, extra: Partial<ExecRequest> = {}): ExecRequest {
    const command = `echo "start ${name}" > "$TC_MARKS"; read line < "${this.gate(name)}"; echo "end ${name}" > "$TC_MARKS"`;
    const signal = extra.signal ? AbortSignal.any([extra.signal, this.cancelAll.signal]) : this.cancelAll.signal;
    return request(command, { ...extra, signal, env: { TC_MARKS: this.marks.fifo } });
  }

  /** Lets a job that has started go on to its end. */
  open(name: string): Promise<void> {
    return writeFile(this.gate(name), 'go\n');
  }

  /** Waits until `count` jobs have said they started. */
  async started(count: number): Promise<void> {
    await this.marks.waitFor('start', { count });
  }

  /** The marks in order: "start 1", "end 1", … */
  get log(): string[] {
    return this.marks.lines;
  }

  private gate(name: string): string {
    return join(this.marks.dir, `gate-${name}`);
  }
}

/** A process's parent, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A process's state letter (R, S, Z…), or undefined once it is gone (reaped). */
function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** Resolves once `pid` is in `state` (polled: the kernel tells nobody but its parent). */
async function waitForState(pid: number, state: string | undefined, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (stateOf(pid) !== state) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is in state ${stateOf(pid) ?? '(gone)'}, not ${state ?? '(gone)'}, after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Kills, when the test ends, what a job left running in a session of its own (marked `mark`). */
function killLeftoversWhenDone(mark: string): void {
  onTestFinished(async () => {
    for (const { pid } of processesWith(mark)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await waitForNoProcessWith(mark);
  });
}

/** The most jobs that were between their start and end marks at once. */
function mostAtOnce(log: string[]): number {
  let running = 0;
  let most = 0;
  for (const line of log) {
    running += line.startsWith('start ') ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

describe('SpawnerExecutor: jobs queue in the spawner, `slots` at a time', () => {
  it('runs at most `slots` jobs at once and starts the others in order as jobs end', async () => {
    const run = executor({ slots: 2 });
    const jobs = new GatedJobs(['1', '2', '3', '4']);
    const outcomes = ['1', '2'].map((name) => run.run(jobs.request(name)));
    // Third in line: while 1 and 2 run it must still be queued, which cancelling it tells (a
    // job that had started would be killed and report SIGTERM instead).
    const probe = new AbortController();
    const probed = run.run(request('echo "start probe" > "$TC_MARKS"', { env: { TC_MARKS: jobs.marks.fifo }, signal: probe.signal }));
    outcomes.push(...['3', '4'].map((name) => run.run(jobs.request(name))));
    await jobs.started(2);
    probe.abort();
    expect(await probed).toMatchObject({ exitcode: null, signal: null, error: null, stopped: 'cancelled', duration: 0 });

    await jobs.open('1');
    await jobs.started(3);
    await jobs.open('2');
    await jobs.started(4);
    await Promise.all(['3', '4'].map((name) => jobs.open(name)));
    for (const outcome of await Promise.all(outcomes)) expect(outcome).toMatchObject({ exitcode: 0, error: null });
    // 1 and 2 start together; 3 takes the first slot that frees, then 4.
    const starts = jobs.log.filter((line) => line.startsWith('start'));
    expect([...starts.slice(0, 2).sort(), ...starts.slice(2)]).toEqual(['start 1', 'start 2', 'start 3', 'start 4']);
    expect(jobs.log.indexOf('start 3')).toBeGreaterThan(jobs.log.indexOf('end 1'));
    expect(mostAtOnce(jobs.log)).toBe(2);
  });

  it('never starts a job cancelled while it waits, and keeps the slot for the next one', async () => {
    const run = executor({ slots: 1 });
    const jobs = new GatedJobs(['blocker', 'after']);
    const blocker = run.run(jobs.request('blocker'));
    const cancel = new AbortController();
    let spawnedCancelled = false;
    const cancelled = run.run({ ...jobs.request('cancelled', { signal: cancel.signal }), onSpawn: () => (spawnedCancelled = true) });
    const after = run.run(jobs.request('after'));
    await jobs.started(1);
    cancel.abort();
    expect(await cancelled).toMatchObject({ exitcode: null, signal: null, stopped: 'cancelled', duration: 0 });
    await jobs.open('blocker');
    await jobs.started(2);
    await jobs.open('after');
    expect(await blocker).toMatchObject({ exitcode: 0 });
    expect(await after).toMatchObject({ exitcode: 0 });
    expect(spawnedCancelled).toBe(false);
    expect(jobs.log).toEqual(['start blocker', 'end blocker', 'start after', 'end after']);
  });

  it('counts timeouts and duration from the actual start, not from the time spent queued', async () => {
    const run = executor({ slots: 1 });
    const blocker = run.run(request('sleep 0.5'));
    const queued = await run.run(request('echo ran', { timeout: 300 }));
    expect(queued).toMatchObject({ exitcode: 0, stopped: null });
    expect(queued.stdout.toString()).toBe('ran\n');
    expect(queued.duration).toBeLessThan(300);
    expect((await blocker).duration).toBeGreaterThanOrEqual(500);
  });

  it('reports a command the system refuses to start as a start failure, with the reason', async () => {
    const outcome = await executor({ slots: 1 }).run(request(`echo ${'x'.repeat(3_000_000)}`));
    expect(outcome).toMatchObject({ exitcode: null, signal: null, stopped: null, error: expect.stringMatching(/^cannot start \S*sh: Argument list too long \(E2BIG\)$/) });
  });

  it('fails and stops the jobs of a spawner that dies, runs again on a new one those it had not started, and starts a new one for the next job', async () => {
    const run = executor({ slots: 1 });
    const mark = `tc-spawner-${randomBytes(6).toString('hex')}`;
    let spawnerPid: number | undefined;
    const outcome = run.run(
      request('sleep 100 & sleep 100', {
        env: { TC_MARK: mark },
        onSpawn: (pid) => {
          // The job's parent is the spawner.
          spawnerPid = parentOf(pid);
          process.kill(spawnerPid, 'SIGKILL');
        },
      }),
    );
    // Queued in that spawner behind the running job (one slot): they never started there.
    const starts = [0, 0, 0];
    const waiting = starts.map((_, k) => run.run(request(`echo "waited ${k} $PPID"`, { onStart: () => starts[k]!++ })));
    expect(await outcome).toMatchObject({ exitcode: null, error: expect.stringMatching(/exited \(SIGKILL\)/) });
    await waitForNoProcessWith(mark);
    const waited = await Promise.all(waiting);
    waited.forEach((result, k) => {
      expect(result).toMatchObject({ exitcode: 0, error: null, stopped: null });
      const [word, index, parent] = result.stdout.toString().trim().split(' ');
      expect([word, index]).toEqual(['waited', String(k)]);
      expect(Number(parent)).not.toBe(spawnerPid);
    });
    expect(starts).toEqual([1, 1, 1]);
    expect(await run.run(request('echo again'))).toMatchObject({ exitcode: 0, error: null });
  });

  it('kills the jobs it runs when the process that drives it dies', async () => {
    const mark = `tc-spawner-${randomBytes(6).toString('hex')}`;
    const script = `
      import { SpawnerExecutor } from ${JSON.stringify(new URL('../../packages/worker/dist/index.js', import.meta.url).href)};
      const run = new SpawnerExecutor({ slots: 2 });
      for (let k = 0; k < 3; k++) run.run({ cmd: 'sleep 100 & sleep 100', cwd: process.cwd(), maxOutput: 100, env: { TC_MARK: '${mark}' } });
    `;
    const driver = spawnProcess('driver', process.execPath, ['--input-type=module', '-e', script], { keepStdin: true });
    // Two jobs run (the third waits for a slot), each a shell and a sleep besides the one it waits for.
    await waitForProcessesWith(mark, 4);
    driver.kill('SIGKILL');
    await driver.waitForExit();
    await waitForNoProcessWith(mark);
  });
});

describe('SpawnerExecutor: a job whose shell exited while what it left holds its output', () => {
  // `setsid` takes the leftover out of the job's group: a stop to the group cannot end it, and
  // only the shell (reaped, it would be nothing) keeps the group's id.
  const leaving = 'echo "a $$" > "$TC_MARKS"; setsid sleep 100 & exit 0';

  it('keeps the shell a zombie, holding its pid and group id, until the job is over', async () => {
    const run = executor({ slots: 2 });
    const marks = new Marks();
    const mark = `tc-spawner-${randomBytes(6).toString('hex')}`;
    killLeftoversWhenDone(mark);
    const cancel = new AbortController();
    const outcome = run.run(request(leaving, { signal: cancel.signal, killGrace: 100, env: { TC_MARKS: marks.fifo, TC_MARK: mark } }));
    const shell = await marks.waitFor('a');
    await waitForState(shell, 'Z');
    // The job is not over (its output is held open): the zombie stays.
    await waitForProcessesWith(mark);
    expect(stateOf(shell)).toBe('Z');
    cancel.abort();
    expect(await outcome).toMatchObject({ exitcode: 0, signal: null, stopped: 'cancelled' });
    await waitForState(shell, undefined);
  });

  it('never signals a recycled pid: stopping such a job cannot reach a job started after it', async (context) => {
    context.skip(process.getuid?.() !== 0, 'needs root, to steer the next pid through /proc/sys/kernel/ns_last_pid');
    const run = executor({ slots: 2 });
    const marks = new Marks();
    const mark = `tc-spawner-${randomBytes(6).toString('hex')}`;
    killLeftoversWhenDone(mark);
    const cancel = new AbortController();
    const a = run.run(request(leaving, { signal: cancel.signal, killGrace: 100, env: { TC_MARKS: marks.fifo, TC_MARK: mark } }));
    const shell = await marks.waitFor('a');
    await waitForState(shell, 'Z');
    // The next pid the kernel hands out is the shell's, unless something still holds it.
    const gate = join(marks.dir, 'gate-b');
    execFileSync('mkfifo', [gate]);
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(shell - 1));
    const b = run.run(request(`echo "b $$" > "$TC_MARKS"; read line < "${gate}"; echo B ran`, { env: { TC_MARKS: marks.fifo } }));
    const other = await marks.waitFor('b');
    expect(other).not.toBe(shell);
    // Stopping A signals A's group (SIGTERM, then SIGKILL after the grace) before A is reported.
    cancel.abort();
    expect(await a).toMatchObject({ exitcode: 0, stopped: 'cancelled' });
    await writeFile(gate, 'go\n');
    expect(text(await b)).toMatchObject({ exitcode: 0, signal: null, stdout: 'B ran\n', stopped: null });
  });
});

describe('SpawnerExecutor: a Python started ahead of need (testclient --local starts it before parsing its options)', () => {
  it('is the one the next executor of that Python runs its jobs with, in the executor’s own directory', async () => {
    const pid = prestartSpawner('python3');
    expect(pid).toBeGreaterThan(0);
    const home = mkdtempSync(join(tmpdir(), 'tc-prestart-'));
    onTestFinished(() => rmSync(home, { recursive: true, force: true }));
    const run = executor({ slots: 1, python: 'python3' });
    run.prestart(home);
    const outcome = await run.run(request('echo "$PPID $(pwd)"', { cwd: home }));
    expect(outcome.stdout.toString()).toBe(`${pid} ${home}\n`);
  });

  it('holds nothing open: a process that never uses it exits as it would have, and the Python goes with it', async () => {
    const mark = `tc-prestart-${randomBytes(6).toString('hex')}`;
    const script = `
      import { prestartSpawner } from ${JSON.stringify(new URL('../../packages/worker/dist/index.js', import.meta.url).href)};
      console.log(prestartSpawner('python3'));
    `;
    const driver = spawnProcess('driver', process.execPath, ['--input-type=module', '-e', script], { env: { TC_MARK: mark } });
    const pythonPid = Number((await driver.waitForLine(/^(\d+)$/m))[1]);
    expect(await driver.waitForExit()).toEqual({ code: 0, signal: null });
    // It carried the driver's environment, marker included; with its stdin closed it exits.
    expect(pythonPid).toBeGreaterThan(0);
    await waitForNoProcessWith(mark);
  });
});

describe('the spawner script, driven directly', () => {
  it('starts jobs that come in the same read as its first line, with nothing more to wake it', async () => {
    const python = spawnProcess('python', 'python3', ['-I', '-S', '-c', SPAWNER_SCRIPT, 'testcloud-spawner'], { keepStdin: true });
    const lines = [['e', { PATH: process.env.PATH }, 1, process.cwd()], ['r', 1, 'echo early', '', null, 1024]];
    python.child.stdin!.write(lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
    await python.waitForLine(/^X 1 0 -$/m);
    expect(python.stdout).toMatch(/^O 1 1 6\nearly\n/m);
    python.child.stdin!.end();
    expect((await python.waitForExit()).code).toBe(0);
  });
});

describe('SpawnerExecutor: fallbacks', () => {
  it('runs commands through the bash launcher when python3 cannot be started', async () => {
    const reasons: string[] = [];
    const run = executor({ slots: 2, python: '/nonexistent/python3', onFallback: (reason) => reasons.push(reason) });
    const outcomes = await Promise.all([run.run(request('echo one')), run.run(request('exit 4'))]);
    expect(outcomes.map((outcome) => [outcome.stdout.toString(), outcome.exitcode])).toEqual([['one\n', 0], ['', 4]]);
    expect(reasons).toEqual([expect.stringMatching(/^cannot start the Python spawner \(cannot start \/nonexistent\/python3: .*ENOENT.*\): running commands through the bash launcher$/)]);
  });

  it('runs them through execa, still `slots` at a time, when bash cannot be started either', async () => {
    const reasons: string[] = [];
    const run = executor({ slots: 2, python: '/nonexistent/python3', bash: '/nonexistent/bash', onFallback: (reason) => reasons.push(reason) });
    const jobs = new GatedJobs(['1', '2']);
    const outcomes = [run.run(jobs.request('1')), run.run(jobs.request('2'))];
    // execa itself would run it at once: the executor must hold it while 1 and 2 run.
    const probe = new AbortController();
    const probed = run.run(request('echo "start probe" > "$TC_MARKS"', { env: { TC_MARKS: jobs.marks.fifo }, signal: probe.signal }));
    await jobs.started(2);
    probe.abort();
    expect(await probed).toMatchObject({ exitcode: null, signal: null, stopped: 'cancelled' });
    await Promise.all([jobs.open('1'), jobs.open('2')]);
    for (const outcome of await Promise.all(outcomes)) expect(outcome).toMatchObject({ exitcode: 0, error: null });
    expect(jobs.log).not.toContain('start probe');
    expect(reasons).toEqual([expect.stringMatching(/running commands through the bash launcher$/), expect.stringMatching(/running commands through execa$/)]);
  });

  it('says so when python3 is older than 3.8, from the script’s own check', async () => {
    // A python3 that claims to be 3.7 while it runs the real script.
    const dir = mkdtempSync(join(tmpdir(), 'tc-old-python-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const oldPython = join(dir, 'python3.7');
    const pretend = 'import sys; sys.version_info = (3, 7, 0); code = sys.argv[1]; sys.argv = ["-c"] + sys.argv[2:]; exec(code)';
    writeFileSync(oldPython, `#!/bin/sh\n# called as: python3 -I -S -c SCRIPT ARGS...\nshift 3\nexec python3 -I -S -c '${pretend}' "$@"\n`);
    chmodSync(oldPython, 0o755);
    expect(SPAWNER_SCRIPT).toContain('sys.version_info < (3, 8)');
    const reasons: string[] = [];
    const run = executor({ slots: 1, python: oldPython, onFallback: (reason) => reasons.push(reason) });
    expect(await run.run(request('exit 5'))).toMatchObject({ exitcode: 5 });
    expect(reasons).toEqual([expect.stringMatching(/python3\.7 is older than 3\.8.*running commands through the bash launcher/)]);
  });
});
