import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient, spawnBin, spawnProcess, startBroker, startWorker, type BrokerHandle } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'testcloud-keys-'));
const key = (name: string) => join(dir, `${name}.key`);
const pub = (name: string) => join(dir, `${name}.pub`);
const clientsList = join(dir, 'authorized-clients');
const workersList = join(dir, 'authorized-workers');

function keygen(name: string): void {
  const made = spawnSync(process.execPath, ['bin/testbroker.js', 'keygen', dir, '--name', name], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`keygen ${name} failed: ${made.stderr}`);
}

async function secureBroker(): Promise<BrokerHandle> {
  return startBroker(['--key', key('broker'), '--authorized-clients', clientsList, '--authorized-workers', workersList, '--heartbeat', '300ms']);
}

function as(name: string): string[] {
  return ['--key', key(name), '--broker-key', pub('broker')];
}

/** A command that leaves a file behind, so a test can tell whether anything ran it. */
function marker(label: string): { path: string; cmd: string } {
  const path = join(dir, `ran-${label}`);
  return { path, cmd: `touch ${path} && echo ran-${label}` };
}

beforeAll(() => {
  for (const name of ['broker', 'ci-client', 'build-worker', 'stranger', 'late-client']) keygen(name);
  writeFileSync(clientsList, `# clients\n${readFileSync(pub('ci-client'), 'utf8')}`);
  writeFileSync(workersList, readFileSync(pub('build-worker'), 'utf8'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keys', () => {
  it('writes a secret key only its owner can read and a public key to hand out', () => {
    expect(readFileSync(key('ci-client'), 'utf8')).toMatch(/^secret-key \S{40}$/m);
    expect(spawnSync('stat', ['-c', '%a', key('ci-client')], { encoding: 'utf8' }).stdout.trim()).toBe('600');
    expect(readFileSync(pub('ci-client'), 'utf8')).toMatch(/^\S{40} ci-client\n$/);
  });

  it('refuses to overwrite an existing key', () => {
    const again = spawnSync(process.execPath, ['bin/testworker.js', 'keygen', dir, '--name', 'ci-client'], { encoding: 'utf8' });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('refuses a secret key file that others can read', async () => {
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, readFileSync(key('ci-client')));
    chmodSync(loose, 0o644);
    const run = await runClient(['--key', loose, '--broker-key', pub('broker'), '-b', 'tcp://127.0.0.1:1'], 'true\n');
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/readable by others \(mode 0644\): run chmod 600/);
  });
});

describe('CURVE between client, broker and worker', () => {
  it('runs the commands of a listed client on a listed worker', async () => {
    const broker = await secureBroker();
    await startWorker(broker.workers, as('build-worker'));
    const mark = marker('allowed');
    const run = await runClient(['-b', broker.clients, ...as('ci-client')], `${mark.cmd}\n`);
    expect(run.code, run.proc.describe()).toBe(0);
    expect(run.stdout).toContain('ran-allowed');
    expect(existsSync(mark.path)).toBe(true);
    await broker.proc.waitForLine(/authenticated client "ci-client" from 127\.0\.0\.1/);
    await broker.proc.waitForLine(/authenticated worker "build-worker"/);
  });

  const refusedClients: Array<[string, () => string[], RegExp]> = [
    ['an unlisted client key', () => as('stranger'), /security handshake failed \(Authentication failure\)/],
    ['a worker key used by a client', () => as('build-worker'), /security handshake failed \(Authentication failure\)/],
    // Depending on timing ZeroMQ reports a mechanism mismatch or just a dropped connection.
    ['no key at all', () => [], /security handshake failed \((one side uses CURVE keys and the other does not|Broken pipe|Connection reset by peer)\)/],
    ['a wrong broker key', () => ['--key', key('ci-client'), '--broker-key', pub('stranger')], /security handshake failed/],
  ];
  for (const [what, flags, reason] of refusedClients) {
    it(`refuses ${what} with one clear line and runs nothing`, async () => {
      const broker = await secureBroker();
      await startWorker(broker.workers, as('build-worker'));
      const mark = marker(what.replace(/\W+/g, '-'));
      const run = await runClient(['-b', broker.clients, '--connect-timeout', '3s', ...flags()], `${mark.cmd}\n`);
      expect(run.code).toBe(2);
      const errorLine = run.stderr.split('\n').find((line) => line.includes('cannot connect'));
      expect(errorLine, run.proc.describe()).toMatch(reason);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(mark.path)).toBe(false);
    });
  }

  it('never hands work to an unlisted worker or to a client key posing as a worker', async () => {
    const broker = await secureBroker();
    const stranger = spawnBin('testworker', ['-b', broker.workers, ...as('stranger')]);
    const posing = spawnBin('testworker', ['-b', broker.workers, ...as('ci-client')]);
    await stranger.waitForLine(/refused the security handshake: Authentication failure/);
    await posing.waitForLine(/refused the security handshake: Authentication failure/);
    await broker.proc.waitForLine(/rejected a worker key \S+ from 127\.0\.0\.1: not in --authorized-workers/);
    // A listed client submits; with no admitted worker, nothing may run it. Then a listed
    // worker joins and the same command runs exactly once, there.
    const mark = marker('queued-until-a-real-worker');
    const client = spawnBin('testclient', ['-b', broker.clients, ...as('ci-client')], { input: `${mark.cmd}\n` });
    await client.waitForLine(/Releasing the hounds: 1 command/);
    expect(existsSync(mark.path)).toBe(false);
    expect(broker.proc.stderr).not.toMatch(/worker \S+ joined/);
    const real = await startWorker(broker.workers, as('build-worker'));
    const exit = await client.waitForExit();
    expect(exit.code, client.describe()).toBe(0);
    expect(existsSync(mark.path)).toBe(true);
    expect(client.stdout.match(/OK! /g)).toHaveLength(1);
    expect(stranger.stderr + posing.stderr).not.toMatch(/connected to broker/);
    real.kill();
  });

  it('admits a key added to the allow-list after SIGHUP and refuses one removed', async () => {
    const lists = join(dir, 'hup-clients');
    writeFileSync(lists, readFileSync(pub('ci-client')));
    const broker = await startBroker(['--key', key('broker'), '--authorized-clients', lists, '--authorized-workers', workersList, '--heartbeat', '300ms']);
    await startWorker(broker.workers, as('build-worker'));

    const before = await runClient(['-b', broker.clients, '--connect-timeout', '2s', ...as('late-client')], 'echo late\n');
    expect(before.code).toBe(2);

    appendFileSync(lists, readFileSync(pub('late-client')));
    broker.proc.kill('SIGHUP');
    await broker.proc.waitForLine(/SIGHUP: re-read allow-lists: 2 client/);
    const after = await runClient(['-b', broker.clients, ...as('late-client')], 'echo late\n');
    expect(after.code, after.proc.describe()).toBe(0);

    writeFileSync(lists, readFileSync(pub('late-client')));
    broker.proc.kill('SIGHUP');
    await broker.proc.waitFor(() => broker.proc.stderr.match(/SIGHUP: re-read allow-lists: 1 client/g)?.length === 1 || undefined, 'the second reload');
    const removed = await runClient(['-b', broker.clients, '--connect-timeout', '2s', ...as('ci-client')], 'echo gone\n');
    expect(removed.code).toBe(2);
    expect(removed.stderr).toMatch(/Authentication failure/);
  });

  it('insists on allow-lists when given a key', async () => {
    const run = spawnBin('testbroker', ['--clients', 'tcp://127.0.0.1:*', '--workers', 'tcp://127.0.0.1:*', '--key', key('broker')]);
    const exit = await run.waitForExit();
    expect(exit.code).toBe(2);
    expect(run.stderr).toMatch(/--key needs --authorized-clients FILE and --authorized-workers FILE/);
  });
});

const hasTcpdump = spawnSync('tcpdump', ['--version']).status === 0 && process.getuid?.() === 0;

describe.skipIf(!hasTcpdump)('on the wire', () => {
  /** Runs one command through a broker while tcpdump records the loopback traffic of its ports. */
  async function capture(secure: boolean, secret: string): Promise<Buffer> {
    const broker = secure ? await secureBroker() : await startBroker(['--heartbeat', '300ms']);
    const ports = [broker.clients, broker.workers].map((endpoint) => endpoint.split(':').pop()!);
    const file = join(dir, `capture-${secure ? 'curve' : 'plain'}.pcap`);
    // --immediate-mode: without it packets wait in the kernel ring and die with tcpdump.
    const tcpdump = spawnProcess('tcpdump', 'tcpdump', ['-i', 'lo', '-U', '--immediate-mode', '-n', '-w', file, `tcp port ${ports[0]} or tcp port ${ports[1]}`]);
    await tcpdump.waitForLine(/listening on lo/);
    await startWorker(broker.workers, secure ? as('build-worker') : []);
    const run = await runClient(['-b', broker.clients, ...(secure ? as('ci-client') : [])], `echo ${secret}\n`);
    expect(run.code, run.proc.describe()).toBe(0);
    expect(run.stdout).toContain(secret);
    tcpdump.kill('SIGINT');
    await tcpdump.waitForExit();
    return readFileSync(file);
  }

  it('never shows a command in clear text under CURVE, though a plain run does', async () => {
    const secret = `distinctive-${process.pid}-${Date.now()}`;
    const plain = await capture(false, secret);
    expect(plain.includes(secret)).toBe(true);
    const curve = await capture(true, secret);
    expect(curve.length).toBeGreaterThan(1000); // the capture did record the run
    expect(curve.includes(secret)).toBe(false);
  });
});
