import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, onTestFinished, vi } from 'vitest';
import { hashResults } from '@testcloud/protocol';
import { isAlive, printedHash, runClient, spawnBin, startBroker, startWorker } from '../helpers/processes.js';
import { deadPort, expectedBody, hashOfRuns, parseResults, runHere } from '../helpers/report.js';

/** Commands whose every kind of outcome testclient must report faithfully. */
const COMMANDS = [
  'echo hello',
  'exit 3',
  'kill -9 $$',
  'echo oops >&2; exit 4',
  'echo just-a-warning >&2',
  "printf '\\377\\376'",
  'no-such-command-testcloud',
  "printf 'no newline'",
  'seq 1 5',
  'true',
  'false',
  "echo 'héllo wörld ✓'",
  "printf 'a\\n\\nb\\n'",
  "sh -c 'exit 7'",
  'echo $((6 * 7))',
  "printf '%s\\n' one two three",
  'echo partial; echo broken >&2; exit 5',
  'test 1 -eq 1',
  'cat /dev/null',
  "head -c 3000 /dev/zero | tr '\\0' z",
];
const FAILING = ['exit 3', 'kill -9 $$', 'echo oops >&2; exit 4', 'no-such-command-testcloud', 'false', "sh -c 'exit 7'", 'echo partial; echo broken >&2; exit 5'];

const PI = [2, 4, 6, 8, 10].map((n) => `test/fixtures/pi ${n}`);

function lines(commands: string[]): string {
  return commands.map((cmd) => `${cmd}\n`).join('');
}

async function startCluster(workerArgs: string[][]) {
  const broker = await startBroker();
  const workers = await Promise.all(workerArgs.map((args) => startWorker(broker.workers, args)));
  return { broker, workers };
}

describe('testbroker, testworker and testclient on loopback TCP', () => {
  it('prints every result once, the failures with their stderr, the summary, and the hash of the same commands run here', async () => {
    const { broker } = await startCluster([['--concurrency', '2'], ['--concurrency', '2']]);
    const client = await runClient(['--broker', broker.clients], lines(COMMANDS));
    const here = COMMANDS.map((cmd) => runHere(cmd));

    expect(client.code, client.proc.describe()).toBe(1);
    expect(client.stderr).toBe('');
    expect(here.filter((run) => run.exitcode !== 0).map((run) => run.cmd)).toEqual(FAILING); // the fixture itself

    const printed = parseResults(client.stdout);
    expect([...printed.keys()].sort()).toEqual([...COMMANDS].sort());
    for (const run of here) {
      const result = printed.get(run.cmd)!;
      const failed = run.exitcode !== 0;
      expect(result.status, run.cmd).toBe(failed ? 'FAIL!' : 'OK!');
      expect(result.reason, run.cmd).toBe(!failed ? undefined : run.exitcode !== null ? `exit ${run.exitcode}` : `killed by ${run.signal}`);
      expect(result.body, run.cmd).toBe(expectedBody(run));
    }
    expect(printed.get('kill -9 $$')!.reason).toBe('killed by SIGKILL');
    expect(printed.get('no-such-command-testcloud')!.body).toMatch(/not found/);
    expect(printed.get('echo oops >&2; exit 4')!.body).toBe('oops\n\n');
    expect(printed.get('echo just-a-warning >&2')!.body).toBe('\n'); // stderr only shown for failures

    // Non-UTF-8 output reaches the terminal byte for byte.
    const bytes = client.proc.stdoutBytes;
    const header = bytes.indexOf(Buffer.from("OK! printf '\\377\\376' ⌚"));
    expect(header).toBeGreaterThanOrEqual(0);
    const bodyStart = bytes.indexOf(0x0a, header) + 1;
    expect(bytes.subarray(bodyStart, bodyStart + 4)).toEqual(Buffer.from([0xff, 0xfe, 0x0a, 0x0a]));

    expect(client.stdout).toContain('Releasing the hounds: 20 commands to execute\n');
    expect(client.stdout).toContain(`7 of 20 commands failed:\n${FAILING.map((cmd) => `  ✗ ${cmd}\n`).join('')}Ran 20 commands in ⌚`);
    expect(printedHash(client.stdout)).toBe(hashOfRuns(here));
  });

  it('prints the same pi outputs and the same hash as the same commands run one by one with --local 1', async () => {
    const { broker } = await startCluster([['--concurrency', '2'], []]);
    const distributed = await runClient(['--broker', broker.clients], lines(PI));
    const local = await runClient(['--local', '1'], lines(PI));

    expect(distributed.code, distributed.proc.describe()).toBe(0);
    expect(local.code, local.proc.describe()).toBe(0);
    const outputs = (stdout: string) => new Map([...parseResults(stdout)].map(([cmd, r]) => [cmd, `${r.status}\n${r.body}`]));
    expect(outputs(distributed.stdout)).toEqual(outputs(local.stdout));
    expect(parseResults(local.stdout).get('test/fixtures/pi 4')!.body).toBe('3.1416\n\n');
    expect(printedHash(distributed.stdout)).toBe(printedHash(local.stdout));
    expect(printedHash(distributed.stdout)).toBe(hashOfRuns(PI.map((cmd) => runHere(cmd))));
  });

  it('keeps only --max-output bytes of each stream and says how many it dropped', async () => {
    const { broker } = await startCluster([['--max-output', '1KiB']]);
    const stdoutCmd = "head -c 5000 /dev/zero | tr '\\0' a";
    const stderrCmd = "head -c 2000 /dev/zero | tr '\\0' e >&2; exit 1";
    const client = await runClient(['--broker', broker.clients], lines([stdoutCmd, stderrCmd]));

    expect(client.code, client.proc.describe()).toBe(1);
    const printed = parseResults(client.stdout);
    expect(printed.get(stdoutCmd)!.body).toBe(`${'a'.repeat(1024)}\n[… 3976 more bytes of stdout truncated by the worker's --max-output]\n\n`);
    expect(printed.get(stderrCmd)!.body).toBe(`${'e'.repeat(1024)}\n[… 976 more bytes of stderr truncated by the worker's --max-output]\n\n`);
    // The hash covers the bytes the worker kept.
    expect(printedHash(client.stdout)).toBe(
      hashResults([
        { id: 0, cmd: stdoutCmd, exitcode: 0, signal: null, stdout: 'a'.repeat(1024), stdoutEncoding: 'utf8' },
        { id: 1, cmd: stderrCmd, exitcode: 1, signal: null, stdout: '', stdoutEncoding: 'utf8' },
      ]),
    );
  });

  it('stops on SIGTERM: each worker leaves the broker, the broker shuts down, all exit 0 and none is left running', async () => {
    const { broker, workers } = await startCluster([['--name', 'w1'], ['--name', 'w2']]);
    const quick = await runClient(['--broker', broker.clients], lines(['true', 'echo done']));
    expect(quick.code, quick.proc.describe()).toBe(0);

    for (const worker of workers) worker.kill('SIGTERM');
    for (const [i, worker] of workers.entries()) {
      expect(await worker.waitForExit(), worker.describe()).toEqual({ code: 0, signal: null });
      expect(worker.stderr).toMatch(/left the broker: worker received SIGTERM/);
      await broker.proc.waitForLine(new RegExp(`worker w${i + 1} left: worker received SIGTERM`));
    }
    broker.proc.kill('SIGTERM');
    expect(await broker.proc.waitForExit(), broker.proc.describe()).toEqual({ code: 0, signal: null });
    expect(broker.proc.stderr).toMatch(/SIGTERM: shutting down/);

    for (const proc of [broker.proc, ...workers, quick.proc]) expect(isAlive(proc.pid), proc.name).toBe(false);
  });

  it('kills the command a worker was running when a second SIGTERM makes it leave at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'testcloud-stop-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const { broker, workers } = await startCluster([['--name', 'w1']]);
    const worker = workers[0]!;
    const pidFile = join(dir, 'sleep.pids');
    const sleepPids = () => readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number);
    const client = spawnBin('testclient', ['--broker', broker.clients], { input: `sleep 60 & echo $! >> ${pidFile}; wait\n` });
    const [sleepPid] = await vi.waitFor(
      () => {
        const pids = sleepPids();
        expect(pids.length).toBeGreaterThan(0);
        return pids;
      },
      { timeout: 15_000, interval: 20 },
    );
    expect(isAlive(sleepPid!)).toBe(true);

    worker.kill('SIGTERM');
    await worker.waitForLine(/draining \(worker received SIGTERM\): 1 job/);
    expect(isAlive(sleepPid!)).toBe(true); // the first SIGTERM lets it finish
    worker.kill('SIGTERM');
    expect((await worker.waitForExit()).code, worker.describe()).toBe(130);
    await broker.proc.waitForLine(/worker w1 left/);
    await vi.waitFor(() => expect(sleepPids().filter(isAlive)).toEqual([]), { timeout: 5000, interval: 20 });

    client.kill('SIGINT');
    expect((await client.waitForExit()).code, client.describe()).toBe(130);
    broker.proc.kill('SIGTERM');
    expect((await broker.proc.waitForExit()).code, broker.proc.describe()).toBe(0);
    for (const proc of [broker.proc, worker, client]) expect(isAlive(proc.pid), proc.name).toBe(false);
  });

  it('exits 0 on a SIGTERM sent as soon as the broker or a worker prints its first line', async () => {
    const port = await deadPort();
    // The race this guards against (a signal before the handler is set) lost most tries: try a few.
    for (let round = 0; round < 3; round++) {
      const broker = await startBroker();
      broker.proc.kill('SIGTERM');
      const worker = spawnBin('testworker', ['--broker', `tcp://127.0.0.1:${port}`]);
      await worker.waitForLine(/started with 1 slot/);
      worker.kill('SIGTERM');
      expect(await broker.proc.waitForExit(), broker.proc.describe()).toEqual({ code: 0, signal: null });
      expect(await worker.waitForExit(), worker.describe()).toEqual({ code: 0, signal: null });
    }
  });
});
