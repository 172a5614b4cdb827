import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, it, expect } from 'vitest';
import { isAlive, printedHash, runClient, spawnBin, spawnProcess, ROOT, WITHOUT_BUNDLE } from '../helpers/processes.js';
import { deadPort, errorLines, hashOfRuns, parseResults, runHere } from '../helpers/report.js';

const COMMANDS = ['echo one', 'seq 1 3', "printf 'x\\ny'", 'test/fixtures/pi 3'];
const INPUT = COMMANDS.map((cmd) => `${cmd}\n`).join('');

function expectOneLineError(stderr: string, program: string, pattern: RegExp): void {
  const lines = errorLines(stderr);
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${program}: `));
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/^\s+at /m); // no stack trace
}

/** Whether this machine lets an unprivileged test make its own network namespace. */
const canUnshare = spawnSync('unshare', ['-rn', 'true']).status === 0;

describe('testclient --local', () => {
  it('runs the commands on an embedded pool without any broker, never touching --broker', async () => {
    const port = await deadPort();
    const client = await runClient(['--local', '2', '--broker', `tcp://127.0.0.1:${port}`], INPUT);

    expect(client.code, client.proc.describe()).toBe(0);
    expect(client.stdout).toMatch(/^Connecting to an embedded pool with 2 worker slot\(s\)$/m);
    expect(client.stdout).not.toContain(String(port));
    expect([...parseResults(client.stdout).values()].map((r) => r.status)).toEqual(['OK!', 'OK!', 'OK!', 'OK!']);
    expect(client.stdout).toContain('All commands successfully executed');
    expect(printedHash(client.stdout)).toBe(hashOfRuns(COMMANDS.map((cmd) => runHere(cmd))));
    expect(client.stderr).toBe('');
  });

  it('uses one slot per CPU when --local has no number', async () => {
    const client = await runClient(['--local'], INPUT);

    expect(client.code, client.proc.describe()).toBe(0);
    expect(client.stdout).toMatch(new RegExp(`^Connecting to an embedded pool with ${availableParallelism()} worker slot\\(s\\)$`, 'm'));
    expect(printedHash(client.stdout)).toBe(hashOfRuns(COMMANDS.map((cmd) => runHere(cmd))));
  });

  it('runs the same from the compiled modules where require() cannot load ES modules, so the bundle is not used', async () => {
    const client = await runClient(['--local', '2'], INPUT, { env: WITHOUT_BUNDLE });

    expect(client.code, client.proc.describe()).toBe(0);
    expect(printedHash(client.stdout)).toBe(hashOfRuns(COMMANDS.map((cmd) => runHere(cmd))));
    expect(client.stderr).toBe('');
  });

  it('exits 1 when a command fails', async () => {
    const client = await runClient(['--local', '1'], 'true\nexit 9\n');
    expect(client.code, client.proc.describe()).toBe(1);
    expect(client.stdout).toContain('1 of 2 commands failed:\n  ✗ exit 9\n');
  });
});

describe('testclient errors', () => {
  it('exits 2 with one clear line naming the endpoint when no broker answers within --connect-timeout', async () => {
    const endpoint = `tcp://127.0.0.1:${await deadPort()}`;
    const started = performance.now();
    const client = await runClient(['--broker', endpoint, '--connect-timeout', '1s'], 'true\n');
    const elapsed = performance.now() - started;

    expect(client.code, client.proc.describe()).toBe(2);
    expect(client.stderr.trimEnd().split('\n'), client.stderr).toHaveLength(1);
    expectOneLineError(client.stderr, 'testclient', new RegExp(`cannot connect to broker at ${endpoint.replace(/\./g, '\\.')} after 1s`));
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(10_000); // the timeout, plus starting node on a busy machine
    expect(client.stdout).not.toMatch(/OK!|FAIL!|result hash/);
  });

  it.each([
    [['--window', '0'], /--window must be a whole number >= 1, got 0/],
    [['--local', 'abc'], /--local takes a number of worker slots >= 1, got "abc"/],
    [['--local', '0'], /--local takes a number of worker slots >= 1/],
    [['--nope'], /Unknown argument: nope/],
    [['--connect-timeout', 'soon'], /"soon" is not a duration/],
    [['--broker', 'tcp://nohost'], /cannot connect to "tcp:\/\/nohost": Invalid argument \(expected e\.g\. tcp:\/\/127\.0\.0\.1:2224\)/],
    [['--broker', 'smtp://127.0.0.1:25'], /cannot connect to "smtp:\/\/127\.0\.0\.1:25": Protocol not supported/],
    // The in-process transport of --local is not an endpoint anyone else can use.
    [['--broker', 'mem://testcloud'], /no broker of this process listens on mem:\/\/testcloud/],
  ])('exits 2 with a one-line error for %j', async (args, pattern) => {
    const client = await runClient(args, 'true\n');
    expect(client.code, client.proc.describe()).toBe(2);
    expectOneLineError(client.stderr, 'testclient', pattern);
    expect(client.stdout).toBe('');
  });
});

describe('testworker and testbroker errors', () => {
  it.each([
    [['--concurrency', '0'], /--concurrency takes a number >= 1 or "auto", got "0"/],
    [['--concurrency', 'many'], /--concurrency takes a number >= 1/],
    [['--weight', '0'], /--weight must be a number > 0/],
    [['--cwd', '/nonexistent/testcloud'], /--cwd \/nonexistent\/testcloud is not a directory/],
    [['--max-output', 'lots'], /"lots" is not a size/],
    [['--nope'], /Unknown argument: nope/],
    [['--broker', 'tcp://127.0.0.1'], /cannot connect to "tcp:\/\/127\.0\.0\.1": Invalid argument/],
    [['--broker', 'mem://testcloud'], /no broker of this process listens on mem:\/\/testcloud/],
  ])('testworker exits 2 with a one-line error for %j', async (args, pattern) => {
    const worker = spawnBin('testworker', ['--broker', `tcp://127.0.0.1:${await deadPort()}`, ...args]);
    expect((await worker.waitForExit()).code, worker.describe()).toBe(2);
    expectOneLineError(worker.stderr, 'testworker', pattern);
  });

  const loopback = ['--workers', 'tcp://127.0.0.1:*'];
  it.each([
    [['--clients', 'tcp://127.0.0.1:*', '--nope'], /Unknown argument: nope/],
    [['--clients', 'tcp://127.0.0.1:*', '--max-message-size', 'huge'], /"huge" is not a size/],
    [['--clients', 'nonsense'], /"nonsense" is not a ZeroMQ endpoint/],
    [['--clients', 'mem://testcloud'], /"mem:\/\/testcloud" is not a ZeroMQ endpoint/],
    [['--clients', 'tcp://127.0.0.1:*', '--upstream', 'tcp://'], /cannot connect to "tcp:\/\/": Invalid argument/],
  ])('testbroker exits 2 with a one-line error for %j', async (args, pattern) => {
    const broker = spawnBin('testbroker', [...args, ...loopback]);
    expect((await broker.waitForExit()).code, broker.describe()).toBe(2);
    expectOneLineError(broker.stderr, 'testbroker', pattern);
  });

  it('testbroker refuses to listen beyond loopback without --insecure', async () => {
    const broker = spawnBin('testbroker', ['--clients', 'tcp://0.0.0.0:*', '--workers', 'tcp://127.0.0.1:*']);
    expect((await broker.waitForExit()).code, broker.describe()).toBe(2);
    expectOneLineError(broker.stderr, 'testbroker', /refusing to bind tcp:\/\/0\.0\.0\.0:\* .*--insecure/);
    expect(broker.stderr).not.toMatch(/listening/);
  });

  // Binding 0.0.0.0 for real happens inside a network namespace of the test's own, where the
  // only interface is a loopback that is down: nothing outside can reach it.
  it.skipIf(!canUnshare)('testbroker listens beyond loopback with --insecure, printing a WARNING', async () => {
    const broker = spawnProcess('testbroker', 'unshare', ['-rn', process.execPath, `${ROOT}/bin/testbroker.js`, '--clients', 'tcp://0.0.0.0:*', '--workers', 'tcp://0.0.0.0:*', '--insecure']);
    await broker.waitForLine(/listening for clients on tcp:\/\/0\.0\.0\.0:\d+ and for workers on tcp:\/\/0\.0\.0\.0:\d+/);
    expect(broker.stderr).toMatch(/^testbroker: WARNING: tcp:\/\/0\.0\.0\.0:\* is reachable beyond this machine with no authentication \(--insecure\)$/m);

    broker.kill('SIGTERM');
    expect((await broker.waitForExit()).code, broker.describe()).toBe(0);
    expect(isAlive(broker.pid)).toBe(false);
  });
});
