import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { hashResults } from '@testcloud/protocol';
import { FIXTURES, printedHash, spawnBin, startBroker, startWorker, type Proc } from '../helpers/processes.js';
import { waitForNoProcessWith } from '../helpers/process-table.js';
import { parseResults, runHere } from '../helpers/report.js';

function lines(commands: string[]): string {
  return commands.map((cmd) => `${cmd}\n`).join('');
}

/** Runs testclient to the end; a failure to end shows `others` too. */
async function runClient(clients: string, args: string[], commands: string[], others: () => Proc[] = () => []): Promise<Proc> {
  const client = spawnBin('testclient', ['--broker', clients, ...args], { input: lines(commands) });
  await client.waitForExit().catch((error: Error) => {
    throw new Error(`${error.message}\n${others().map((proc) => proc.describe()).join('\n')}`);
  });
  return client;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'testcloud-retries-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('timeouts', () => {
  it('kill a command and everything it started when --timeout or --idle-timeout passes, reported as timed out', async () => {
    const marker = `tc-${randomBytes(6).toString('hex')}`;
    const broker = await startBroker();
    await startWorker(broker.workers, ['--concurrency', '5']);
    const sleepers = `TC_MARK=${marker} sh -c 'sleep 100 & sleep 100'`;
    // Ignores SIGTERM (and so do its children): only the SIGKILL after the grace period stops it.
    const stubborn = `TC_MARK=${marker} sh -c "trap '' TERM; sleep 100 & sleep 100"`;
    const chatty = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; sleep 0.1; done';

    const [wall, idle] = await Promise.all([
      runClient(broker.clients, ['--timeout', '500ms'], [sleepers, stubborn, 'echo in time']),
      runClient(broker.clients, ['--idle-timeout', '1s'], [`echo started; ${sleepers}`, chatty]),
    ]);

    expect(wall.exit!.code, wall.describe()).toBe(1);
    const walls = parseResults(wall.stdout);
    expect(walls.get(sleepers)).toMatchObject({ status: 'FAIL!', reason: 'timed out' });
    expect(walls.get(stubborn)).toMatchObject({ status: 'FAIL!', reason: 'timed out' });
    expect(walls.get('echo in time')).toMatchObject({ status: 'OK!', body: 'in time\n\n' });

    expect(idle.exit!.code, idle.describe()).toBe(1);
    const idles = parseResults(idle.stdout);
    // Output keeps the silence limit away: 1.2 s of ticks every 0.1 s pass a 1 s --idle-timeout.
    expect(idles.get(chatty)).toMatchObject({ status: 'OK!', body: '1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n\n' });
    expect(idles.get(`echo started; ${sleepers}`)).toMatchObject({ status: 'FAIL!', reason: 'timed out: no output', body: 'started\n\n' });

    // Every process of each command's group is gone (the SIGKILL after the grace took the stubborn ones).
    await waitForNoProcessWith(marker, 3000);
  });

  it('stop commands that a timeout ends before they have even started, and the worker keeps going', async () => {
    const broker = await startBroker();
    const worker = await startWorker(broker.workers, ['--concurrency', '4']);
    // A 1 ms limit fires while the worker is still starting the command.
    const commands = Array.from({ length: 8 }, (_, i) => `true # ${i}`);
    const rushed = await runClient(broker.clients, ['--timeout', '1ms'], commands, () => [broker.proc, worker]);

    expect([0, 1], rushed.describe()).toContain(rushed.exit!.code);
    const printed = parseResults(rushed.stdout);
    expect([...printed.keys()].sort()).toEqual(commands);
    for (const [cmd, result] of printed) expect(result.status === 'OK!' || result.reason === 'timed out', cmd).toBe(true);
    const after = await runClient(broker.clients, [], ['echo still here'], () => [broker.proc, worker]);
    expect(parseResults(after.stdout).get('echo still here'), after.describe()).toMatchObject({ status: 'OK!', body: 'still here\n\n' });
    expect(worker.exit, worker.describe()).toBeUndefined();
  });
});

describe('retries', () => {
  it('re-runs a failing command up to --retries times, on another worker where one is free, and shows the attempts', async () => {
    const dir = tempDir();
    const broker = await startBroker();
    await Promise.all([startWorker(broker.workers), startWorker(broker.workers), startWorker(broker.workers)]);
    // Each attempt appends the pid of the worker running it; the third one passes.
    const flaky = `echo $(${FIXTURES}/worker-pid) >> ${dir}/flaky; [ $(wc -l < ${dir}/flaky) -ge 3 ] && echo third time lucky`;
    const broken = `echo $(${FIXTURES}/worker-pid) >> ${dir}/broken; echo still broken; exit 3`;

    const client = await runClient(broker.clients, ['--retries', '2'], [flaky, broken]);

    expect(client.exit!.code, client.describe()).toBe(1);
    const printed = parseResults(client.stdout);
    expect(client.stdout).toMatch(/^OK! echo .*flaky.* ⌚[^\n]* after 3 attempts\n/m);
    expect(printed.get(flaky)).toMatchObject({ status: 'OK!', body: 'third time lucky\n\n' });
    expect(client.stdout).toMatch(/^FAIL! echo .*broken.* ⌚[^\n]* after 3 attempts \(exit 3\)\n/m);
    expect(printed.get(broken)).toMatchObject({ status: 'FAIL!', reason: 'exit 3', body: 'still broken\n\n' });
    for (const name of ['flaky', 'broken']) {
      const ranOn = readFileSync(join(dir, name), 'utf8').trim().split('\n');
      expect(ranOn, name).toHaveLength(3);
      // Three workers, two commands: when one fails, a worker other than its own is always free.
      expect(ranOn[1], name).not.toBe(ranOn[0]);
    }
  });

  it('reports a command that kills every worker it runs on as lost after --max-lost workers, and finishes the run', async () => {
    const broker = await startBroker(['--heartbeat', '200ms', '--liveness', '5', '--max-lost', '2']);
    // A supervisor, as in production: a worker that dies is replaced (at most a few times).
    const deaths: Proc[] = [];
    const started: Proc[] = [];
    let stopping = false;
    onTestFinished(() => {
      stopping = true;
    });
    const supervise = async (): Promise<void> => {
      const worker = await startWorker(broker.workers, ['--liveness', '5']);
      started.push(worker);
      void worker.exited.then(() => {
        deaths.push(worker);
        if (!stopping && deaths.length < 5) void supervise().catch(() => {});
      });
    };
    await Promise.all([supervise(), supervise()]);
    const poison = `kill -9 $(${FIXTURES}/worker-pid)`;
    const pis = [2, 4, 6, 8].map((n) => `${FIXTURES}/pi ${n}`);
    const commands = [poison, ...pis];

    const client = await runClient(broker.clients, [], commands, () => [broker.proc, ...started]);

    expect(client.exit!.code, client.describe()).toBe(1);
    const printed = parseResults(client.stdout);
    expect(printed.get(poison)).toMatchObject({ status: 'FAIL!', body: '\n' });
    expect(printed.get(poison)!.reason).toMatch(/^lost: 2 workers died or vanished while running it \(last: expired: no heartbeat for [\d.]+s; --max-lost 2\)$/);
    expect(client.stdout).toMatch(/^FAIL! kill -9 .* after 2 attempts \(lost: /m);
    for (const cmd of pis) expect(printed.get(cmd), cmd).toMatchObject({ status: 'OK!', body: runHere(cmd).stdout.toString() + '\n' });
    expect(deaths.map((w) => w.exit)).toEqual([
      { code: null, signal: 'SIGKILL' },
      { code: null, signal: 'SIGKILL' },
    ]);
    // A lost command hashes as one that could not run: no exit code, no signal, no output.
    expect(printedHash(client.stdout)).toBe(
      hashResults(
        commands.map((cmd, id) =>
          id === 0
            ? { id, cmd, exitcode: null, signal: null, stdout: '', stdoutEncoding: 'utf8' as const }
            : { id, cmd, exitcode: 0, signal: null, stdout: runHere(cmd).stdout.toString(), stdoutEncoding: 'utf8' as const },
        ),
      ),
    );
  });
});
