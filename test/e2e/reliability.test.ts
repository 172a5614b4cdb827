import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jobResult } from '../helpers/job-result.js';
import { Marks } from '../helpers/marks.js';
import { FIXTURES, printedHash, spawnBin, startBroker, type Proc } from '../helpers/processes.js';
import { waitForNoProcessWith, waitForProcessesWith, processesWith } from '../helpers/process-table.js';
import { rawDealer } from '../helpers/raw-peer.js';
import { countResults, deadPort, expectedBody, hashOfRuns, parseResults, runHere, type LocalRun } from '../helpers/report.js';

// Short heartbeats keep these tests fast: a silent peer is expired after 200 ms × 5 = 1 s. A
// liveness of 5 rather than 3 keeps a healthy peer on a busy 2-core machine from being expired.
const FAST_BROKER = ['--heartbeat', '200ms', '--liveness', '5'];
const FAST_WORKER = ['--liveness', '5'];

const PI = [2, 4, 6, 8].map((n) => `${FIXTURES}/pi ${n}`);

function lines(commands: string[]): string {
  return commands.map((cmd) => `${cmd}\n`).join('');
}

/** A worker whose commands can write marks to `marks`; resolves once the broker has answered it. */
async function startWorker(workers: string, marks?: Marks, args: string[] = []): Promise<Proc> {
  const proc = spawnBin('testworker', ['--broker', workers, ...FAST_WORKER, ...args], marks ? { env: { TC_MARKS: marks.fifo } } : {});
  await proc.waitForLine(/connected to broker/);
  return proc;
}

function exitCode(proc: Proc): Promise<number | null> {
  return proc.waitForExit().then((exit) => exit.code);
}

/**
 * `cmd` as a fault-free run here would report it, computed by running `standIn`, a command that
 * prints the same without the marks and sleeps that only pace the test.
 */
function runAs(cmd: string, standIn = cmd): LocalRun {
  return { ...runHere(standIn), cmd };
}

/** Every command printed exactly once, with the output of a fault-free run, and that run's hash. */
function expectFaultFree(stdout: string, runs: LocalRun[]): void {
  const printed = parseResults(stdout); // throws if a command was printed twice
  expect([...printed.keys()].sort()).toEqual(runs.map((run) => run.cmd).sort());
  for (const run of runs) expect(printed.get(run.cmd)!.body, run.cmd).toBe(expectedBody(run));
  expect(printedHash(stdout)).toBe(hashOfRuns(runs));
}

describe('when a worker dies or stalls', () => {
  it('reruns the job of a SIGKILLed worker on another worker, with the output and hash of a fault-free run', async () => {
    const marks = new Marks();
    const broker = await startBroker(FAST_BROKER);
    const workers = [await startWorker(broker.workers, marks), await startWorker(broker.workers, marks)];
    // The mark and the sleep print nothing, so this prints what a fault-free run prints.
    const long = `${FIXTURES}/mark long; sleep 1; ${FIXTURES}/pi 12`;
    const commands = [long, ...PI];
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: lines(commands) });

    const first = await marks.waitFor('long');
    expect([workers[0]!.pid, workers[1]!.pid]).toContain(first);
    const [dead, survivor] = first === workers[0]!.pid ? [workers[0]!, workers[1]!] : [workers[1]!, workers[0]!];
    dead.kill('SIGKILL');

    await broker.proc.waitForLine(new RegExp(`worker \\S+:${dead.pid} left: expired: no heartbeat for [\\d.]+s; requeued 1 job`));
    expect(await marks.waitFor('long', { count: 2 })).toBe(survivor.pid);
    expect(await exitCode(client), client.describe()).toBe(0);
    expectFaultFree(client.stdout, [runAs(long, `${FIXTURES}/pi 12`), ...PI.map((cmd) => runAs(cmd))]);
  });

  it('moves the jobs of a SIGSTOPped worker on after the liveness window and drops its late result after SIGCONT', async () => {
    const marks = new Marks();
    const broker = await startBroker(FAST_BROKER);
    const workers = [await startWorker(broker.workers, marks), await startWorker(broker.workers, marks)];
    // The output names the worker that ran it: a late result would show the stalled one.
    const stall = `${FIXTURES}/mark stall; sleep 1.5; ${FIXTURES}/mark stall-done; echo ran-on-$(${FIXTURES}/worker-pid)`;
    const commands = [stall, ...PI];
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: lines(commands) });

    const firstPid = await marks.waitFor('stall');
    const stalled = workers.find((w) => w.pid === firstPid)!;
    const other = workers.find((w) => w.pid !== firstPid)!;
    expect(stalled, `the stall command ran on ${firstPid}`).toBeDefined();
    stalled.kill('SIGSTOP');
    try {
      await broker.proc.waitForLine(new RegExp(`worker \\S+:${stalled.pid} left: expired: no heartbeat for [\\d.]+s; requeued 1 job`));
      expect(await marks.waitFor('stall', { count: 2 })).toBe(other.pid);
      // The stalled worker's command ran on (its process group was not stopped) and finished:
      // its result waits in the stalled worker, due as soon as it runs again.
      expect(await marks.waitFor('stall-done')).toBe(stalled.pid);
    } finally {
      stalled.kill('SIGCONT');
    }
    // It notices it lost the broker, greets it again and rejoins, with nothing of the old session.
    await stalled.waitForLine(/lost the broker at \S+: .*; reconnecting/);
    await broker.proc.waitForLine(new RegExp(`worker \\S+:${stalled.pid} joined[^\\n]*\\n(.|\\n)*worker \\S+:${stalled.pid} joined`));

    expect(await exitCode(client), client.describe()).toBe(0);
    const printed = parseResults(client.stdout);
    expect(printed.size).toBe(commands.length);
    expect(printed.get(stall)!.body).toBe(`ran-on-${other.pid}\n\n`);
    expect(marks.workers('stall-done')).toEqual([stalled.pid, other.pid]);
  });

  for (const executor of ['fast', 'execa']) {
    it(`stops the commands of a worker killed with SIGKILL (${executor} executor), children included`, async () => {
      const marks = new Marks();
      const broker = await startBroker(FAST_BROKER);
      const worker = await startWorker(broker.workers, marks, ['--executor', executor]);
      const marker = `orphan-${randomBytes(6).toString('hex')}`;
      // The marker is in the shell's command line and, exported, in every child's environment.
      const cmd = `export TC_ORPHAN=${marker}; ${FIXTURES}/mark orphan; sleep 100 & sleep 100`;
      spawnBin('testclient', ['--broker', broker.clients], { input: lines([cmd]) });
      await marks.waitFor('orphan');
      await waitForProcessesWith(marker, 3); // sh and its two sleeps
      worker.kill('SIGKILL');
      await waitForNoProcessWith(marker);
    });
  }
});

describe('exactly-once reporting', () => {
  it('drops the late result of an earlier attempt: results are matched by job id and attempt', async () => {
    const broker = await startBroker(FAST_BROKER);
    // A scripted worker: it takes the job, confirms it, then falls silent long enough to expire.
    const fake = rawDealer(broker.workers);
    const ready = { type: 'ready', worker: 'scripted', host: 'fake', pid: 1, slots: 1, weight: 1 } as const;
    await fake.message(ready);
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: 'echo real\n' });
    const job = await fake.waitFor((m) => (m.type === 'job' ? m.jobs[0] : undefined), 'a JOB', broker.proc);
    expect(job).toMatchObject({ cmd: 'echo real', attempt: 1 });
    await fake.message({ type: 'queued', jobs: [{ id: job.id, attempt: 1 }] });
    await broker.proc.waitForLine(/worker scripted left: expired: no heartbeat for [\d.]+s; requeued 1 job/);

    // Back in a new session, it is given the job again (attempt 2), then answers attempt 1 late.
    await fake.message(ready);
    const again = await fake.waitFor((m) => (m.type === 'job' && m.jobs[0]!.attempt === 2 ? m.jobs[0] : undefined), 'the JOB again', broker.proc);
    expect(again.id).toBe(job.id);
    const result = (attempt: number, stdout: string) => jobResult({ id: job.id, attempt, cmd: job.cmd, stdout, worker: 'scripted' });
    await fake.message({ type: 'result', results: [result(1, 'late\n')] });
    await fake.message({ type: 'result', results: [result(2, 'real\n')] });

    expect(await exitCode(client), client.describe()).toBe(0);
    expect(parseResults(client.stdout).get('echo real')).toMatchObject({ status: 'OK!', body: 'real\n\n' });
    expect(client.stdout).toMatch(/^OK! echo real ⌚[^\n]* after 2 attempts$/m);
    expect(printedHash(client.stdout)).toBe(hashOfRuns([runHere('echo real')]));
  });
});

describe('dispatch acknowledgement', () => {
  it('takes a job back from a worker that does not confirm it within --ack-timeout and runs it elsewhere', async () => {
    const broker = await startBroker([...FAST_BROKER, '--ack-timeout', '500ms']);
    // A scripted worker that heartbeats (so it is not expired) but never confirms a job.
    const fake = rawDealer(broker.workers);
    await fake.message({ type: 'ready', worker: 'unconfirming', host: 'fake', pid: 1, slots: 1, weight: 1 });
    fake.keepAlive({ type: 'heartbeat', state: 'busy', offered: 1 });
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: 'echo confirmed elsewhere\n' });
    const job = await fake.waitFor((m) => (m.type === 'job' ? m.jobs[0] : undefined), 'a JOB', broker.proc);
    await startWorker(broker.workers);

    const cancel = await fake.waitFor((m) => (m.type === 'cancel' ? m.jobs : undefined), 'a CANCEL', broker.proc);
    expect(cancel).toEqual([{ id: job.id, attempt: 1 }]);
    await broker.proc.waitForLine(/worker unconfirming did not confirm 1 job within 500 ms: sent elsewhere/);
    expect(await exitCode(client), client.describe()).toBe(0);
    expect(client.stdout).toMatch(/^OK! echo confirmed elsewhere ⌚[^\n]* after 2 attempts\nconfirmed elsewhere\n/m);
    expect(broker.proc.stderr).not.toMatch(/worker unconfirming left/);
  });
});

describe('when the broker restarts', () => {
  it('lets workers and the client reconnect to a broker restarted on the same ports, and the run completes with the right hash', async () => {
    const clientPort = await deadPort();
    let workerPort = await deadPort();
    while (workerPort === clientPort) workerPort = await deadPort();
    const endpoints = ['--clients', `tcp://127.0.0.1:${clientPort}`, '--workers', `tcp://127.0.0.1:${workerPort}`];
    const startFixedBroker = async () => {
      const proc = spawnBin('testbroker', [...endpoints, ...FAST_BROKER]);
      const match = await proc.waitForLine(/listening for clients on \S+ and for workers on \S+ \(broker (\w+)\)/);
      return { proc, id: match[1]! };
    };
    const first = await startFixedBroker();
    const workers = [await startWorker(`tcp://127.0.0.1:${workerPort}`), await startWorker(`tcp://127.0.0.1:${workerPort}`)];
    const numbers = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const commands = numbers.map((n) => `sleep 0.2; ${FIXTURES}/pi ${n}`);
    const client = spawnBin('testclient', ['--broker', `tcp://127.0.0.1:${clientPort}`], { input: lines(commands) });

    await client.waitFor(() => (countResults(client.stdout) >= 2 ? true : undefined), 'two results');
    first.proc.kill('SIGKILL');
    await first.proc.waitForExit();
    expect(countResults(client.stdout)).toBeLessThan(commands.length);
    const second = await startFixedBroker();
    expect(second.id).not.toBe(first.id);

    expect(await exitCode(client), client.describe()).toBe(0);
    expect(client.stderr).toMatch(/the broker restarted: resubmitting \d+ command\(s\) without a result/);
    for (const worker of workers) await worker.waitForLine(new RegExp(`connected to broker at \\S+ \\(broker ${second.id}\\)`));
    expectFaultFree(client.stdout, numbers.map((n, id) => runAs(commands[id]!, `${FIXTURES}/pi ${n}`)));
  });
});

describe('when the client goes away', () => {
  /**
   * Eight commands that start `sleep`s in the background and mark once they have: four run, four
   * wait in the queue. Every other one ignores SIGTERM, so only the SIGKILL after the grace stops it.
   */
  function sleepers(marker: string): string[] {
    return Array.from({ length: 8 }, (_, i) => {
      const trap = i % 2 === 1 ? "trap '' TERM; " : '';
      return `TC_MARK=${marker} sh -c '${trap}sleep 100 & sleep 100 & ${FIXTURES}/mark started; wait' # ${i}`;
    });
  }

  async function cluster() {
    const marks = new Marks();
    const broker = await startBroker(FAST_BROKER);
    await Promise.all([startWorker(broker.workers, marks, ['--concurrency', '2']), startWorker(broker.workers, marks, ['--concurrency', '2'])]);
    return { marks, broker };
  }

  /** The broker then serves the next client as if nothing had happened. */
  async function expectServesNextClient(clients: string, marker: string) {
    const next = spawnBin('testclient', ['--broker', clients], { input: lines(PI) });
    expect(await exitCode(next), next.describe()).toBe(0);
    expectFaultFree(next.stdout, PI.map((cmd) => runAs(cmd)));
    // Had the killed client's queued commands survived, they would have run by now.
    expect(processesWith(marker)).toEqual([]);
  }

  it('cancels every command of a SIGKILLed client on its workers, leaving no process behind, and serves the next client', async () => {
    const marker = `tc-${randomBytes(6).toString('hex')}`;
    const { marks, broker } = await cluster();
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: lines(sleepers(marker)) });
    await marks.waitFor('started', { count: 4 });
    await waitForProcessesWith(marker, 4 * 3); // each: a shell and 2 sleeps, forked after the mark

    client.kill('SIGKILL');
    await broker.proc.waitForLine(/client \S+ expired: no heartbeat for [\d.]+s: dropped 4 queued jobs, cancelled 4 running jobs/);
    await waitForNoProcessWith(marker);
    await expectServesNextClient(broker.clients, marker);
    expect(marks.workers('started')).toHaveLength(4);
  });

  it('on Ctrl-C says goodbye, so the broker cancels its commands, and exits 130', async () => {
    const marker = `tc-${randomBytes(6).toString('hex')}`;
    const { marks, broker } = await cluster();
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: lines(sleepers(marker)) });
    await marks.waitFor('started', { count: 4 });

    client.kill('SIGINT');
    expect(await exitCode(client), client.describe()).toBe(130);
    expect(client.stderr).toMatch(/interrupted; the broker cancels the commands still running/);
    // The goodbye, not the heartbeat expiry, told the broker.
    await broker.proc.waitForLine(/client \S+ said goodbye: client interrupted: dropped 4 queued jobs, cancelled 4 running jobs/);
    await waitForNoProcessWith(marker);
    await expectServesNextClient(broker.clients, marker);
    expect(marks.workers('started')).toHaveLength(4);
  });
});
