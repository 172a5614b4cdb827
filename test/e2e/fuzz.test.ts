import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Router } from 'zeromq';
import { encode, type Message } from '@testcloud/protocol';
import { fuzzMessages, MUTATIONS, type Mutation } from '../helpers/fuzz.js';
import { FIXTURES, printedHash, spawnBin, startBroker, startWorker, type Proc } from '../helpers/processes.js';
import { RawPeer, rawDealer } from '../helpers/raw-peer.js';
import { hashOfRuns, parseResults, runHere } from '../helpers/report.js';

const COUNT = 10_000;
const MAX_MESSAGE_SIZE = 64 * 1024;
// Replay a failure with FUZZ_SEED=<the seed in its message>.
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PI = [2, 4, 6, 8].map((n) => `${FIXTURES}/pi ${n}`);
const LABEL = ` (fuzz seed ${SEED})`;

/** Sends COUNT fuzzed messages, every kind of mutation among them. */
async function fuzz(send: (frames: Buffer[]) => Promise<void>, seed: number): Promise<void> {
  const sent = Object.fromEntries(MUTATIONS.map((m) => [m, 0])) as Record<Mutation, number>;
  for (const { mutation, frames } of fuzzMessages(seed, COUNT, MAX_MESSAGE_SIZE)) {
    sent[mutation]++;
    await send(frames);
  }
  for (const mutation of MUTATIONS) expect(sent[mutation], `${mutation}${LABEL}`).toBeGreaterThan(COUNT / MUTATIONS.length / 2);
}

/**
 * A frame larger than --max-message-size never reaches the program: ZeroMQ itself drops the
 * connection it came on (and whatever was queued behind it), so these go on a connection of their own.
 */
const OVERSIZED = [Buffer.alloc(MAX_MESSAGE_SIZE + 1, 0x41)];

/** How many times each kind of "dropped" or "ignored" line was logged, by kind. */
function logLinesByKind(stderr: string, pattern: RegExp): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of stderr.matchAll(pattern)) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + 1);
  return counts;
}

const CODEC_CODES = [
  'TESTCLOUD_PROTOCOL_SIGNATURE',
  'TESTCLOUD_PROTOCOL_VERSION',
  'TESTCLOUD_PROTOCOL_FRAMES',
  'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE',
  'TESTCLOUD_PROTOCOL_JSON',
  'TESTCLOUD_PROTOCOL_INVALID',
  'TESTCLOUD_PROTOCOL_TOO_LARGE',
];

function expectOneLinePerKind(proc: Proc, pattern: RegExp, kinds: string[]): void {
  const counts = logLinesByKind(proc.stderr, pattern);
  for (const kind of kinds) expect(counts.get(kind), `${kind} in ${proc.describe()}\n(fuzz seed ${SEED})`).toBe(1);
  for (const [kind, count] of counts) expect(count, `log lines for ${kind} (fuzz seed ${SEED})`).toBe(1);
}

describe(`hostile input (fuzz seed ${SEED})`, () => {
  it(`leaves the broker running and correct after ${COUNT} garbage messages on each endpoint, logging one line per kind`, async () => {
    const broker = await startBroker(['--max-message-size', '64KiB', '--heartbeat', '200ms', '--liveness', '5', '--ack-timeout', '1s']);
    // A real worker is connected throughout: whatever a fuzzed SUBMIT gets through (only `true`) runs.
    const worker = await startWorker(broker.workers, ['--liveness', '5']);

    for (const endpoint of [broker.clients, broker.workers]) {
      const oversized = rawDealer(endpoint, LABEL);
      for (let i = 0; i < 3; i++) await oversized.send(OVERSIZED);
      await oversized.send(encode({ type: 'hello', client: 'oversized' }));
    }

    const client = rawDealer(broker.clients, LABEL);
    await fuzz((frames) => client.send(frames), SEED);
    // A broker serves a peer's messages in order: the answer to one sent last means all were
    // served. Leaving first drops what the fuzz queued; heartbeats keep the new session alive
    // while a fuzzed job (say, `true` with a 1 ms timeout) may still hold the worker's slot.
    await client.send(encode({ type: 'bye', reason: 'fuzz done' }));
    await client.send(encode({ type: 'submit', jobs: [{ id: 987_654_321, cmd: 'true' }] }));
    const stopBeating = client.keepAlive();
    await client.waitFor((m) => (m.type === 'result' && m.results.some((r) => r.id === 987_654_321 && r.exitcode === 0) ? true : undefined), 'the result of a last SUBMIT', {
      describe: () => broker.proc.describe() + worker.describe(),
    });
    stopBeating();
    await client.send(encode({ type: 'bye', reason: 'fuzz done' }));

    const fakeWorker = rawDealer(broker.workers, LABEL);
    await fuzz((frames) => fakeWorker.send(frames), SEED + 1);
    const name = `fuzz-${randomBytes(4).toString('hex')}`;
    await fakeWorker.send(encode({ type: 'bye', reason: 'fuzz done' }));
    // A name that tries to forge a log line of its own.
    await fakeWorker.send(encode({ type: 'ready', worker: `${name}\ntestbroker: forged`, host: 'fuzz', pid: 1, slots: 1, weight: 1 }));
    await broker.proc.waitForLine(new RegExp(`worker ${name}\\\\u000atestbroker: forged joined`));
    await fakeWorker.send(encode({ type: 'bye', reason: 'fuzz done\r\ntestbroker: forged' }));
    await broker.proc.waitForLine(new RegExp(`worker ${name}\\\\u000atestbroker: forged left: fuzz done\\\\u000d\\\\u000atestbroker: forged`));
    expect(broker.proc.stderr).not.toMatch(/^testbroker: forged/m);

    const run = spawnBin('testclient', ['--broker', broker.clients], { input: PI.map((cmd) => `${cmd}\n`).join('') });
    expect((await run.waitForExit()).code, run.describe()).toBe(0);
    expect([...parseResults(run.stdout).keys()].sort()).toEqual([...PI].sort());
    expect(printedHash(run.stdout)).toBe(hashOfRuns(PI.map((cmd) => runHere(cmd))));

    expect(broker.proc.exit, broker.proc.describe()).toBeUndefined();
    expect(worker.exit, worker.describe()).toBeUndefined();
    expect(broker.proc.stderr).not.toMatch(/receive loop failed|Error:|\n\s+at /);
    expectOneLinePerKind(broker.proc, /dropped a bad message from a client \((TESTCLOUD_\w+):/g, CODEC_CODES);
    expectOneLinePerKind(broker.proc, /dropped a bad message from a worker \((TESTCLOUD_\w+):/g, CODEC_CODES);
  });

  it(`leaves a worker running and correct after ${COUNT} garbage messages from its broker, logging one line per kind`, async () => {
    // A fake broker that answers every READY and heartbeat, so the worker stays in a session
    // between the garbage. It speaks the worker's own protocol: `true` is all it ever runs.
    const fake = new Router({ linger: 0, handover: true, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
    await fake.bind('tcp://127.0.0.1:*');
    const reply = (peer: Buffer, message: Message) => broker.send([peer, ...encode(message)]);
    let redispatch: (message: Message) => void = () => {};
    const broker: RawPeer = new RawPeer(
      fake,
      true,
      (message, peer) => {
        if (message.type === 'ready') void reply(peer!, { type: 'ok', broker: 'fuzz-broker', heartbeat: 200 }).catch(() => {});
        if (message.type === 'heartbeat') void reply(peer!, { type: 'heartbeat', broker: 'fuzz-broker' }).catch(() => {});
        redispatch(message);
      },
      LABEL,
    );
    const worker = spawnBin('testworker', ['--broker', fake.lastEndpoint!, '--max-message-size', '64KiB', '--liveness', '5']);
    await worker.waitForLine(/connected to broker/);
    const peer = await broker.waitFor((message, from) => (message.type === 'ready' ? from : undefined), 'a READY', worker);
    const readies = () => broker.received.filter(({ message }) => message.type === 'ready').length;
    const before = readies();
    // Too large for the worker's socket: ZeroMQ drops the connection, the worker reconnects and greets again.
    await broker.send([peer!, ...OVERSIZED]);
    await broker.waitFor(() => (readies() > before ? true : undefined), 'a READY after the connection dropped', worker);

    await fuzz((frames) => broker.send([peer!, ...frames]), SEED + 2);
    // Make sure it is in a session, then give it a job: it must run it and report it.
    await reply(peer!, { type: 'ok', broker: 'fuzz-broker', heartbeat: 200 });
    // Jobs of the fuzz's many sessions may still be dying: a worker offers no slot they hold (and
    // hands back a job sent into one), so wait, as a broker would, until it offers one again.
    const seen = broker.received.length;
    await broker.waitFor(
      (m) => (m.type === 'heartbeat' && (m.offered ?? 0) >= 1 && broker.received.findIndex((r) => r.message === m) >= seen ? true : undefined),
      'a heartbeat offering a free slot',
      worker,
    );
    // Then do what a broker does: dispatch, and dispatch again (a new attempt) if the worker
    // greets anew or hands the job back, or has not confirmed it within a second. Fuzzed OKs and
    // BYEs still in flight can start a new session in which the first attempt no longer counts.
    let attempt = 0;
    let confirmed = 0;
    const dispatch = () => {
      attempt++;
      void reply(peer!, { type: 'job', jobs: [{ id: 424_242, cmd: 'echo fuzzed-worker-ok', attempt, timeout: 0, idleTimeout: 0 }] }).catch(() => {});
    };
    redispatch = (message) => {
      if (message.type === 'queued' && message.jobs.some((j) => j.id === 424_242 && j.attempt === attempt)) confirmed = attempt;
      if (message.type === 'ready' || (message.type === 'requeue' && message.jobs.some((j) => j.id === 424_242))) dispatch();
    };
    const ackTimer = setInterval(() => {
      if (confirmed !== attempt) dispatch();
    }, 1000);
    onTestFinished(() => clearInterval(ackTimer));
    dispatch();
    const result = await broker.waitFor(
      (m) => (m.type === 'result' ? m.results.find((r) => r.id === 424_242) : undefined),
      'the result of a job sent after the fuzz',
      worker,
    );
    clearInterval(ackTimer);
    expect(result).toMatchObject({ exitcode: 0, stdout: 'fuzzed-worker-ok\n', stopped: null });

    expect(worker.exit, worker.describe()).toBeUndefined();
    expect(worker.stderr).not.toMatch(/receive loop failed|Error:|\n\s+at /);
    expectOneLinePerKind(worker, /dropped a bad message from the broker \((TESTCLOUD_\w+):/g, CODEC_CODES);
    expectOneLinePerKind(worker, /ignored an? (\w+) from the broker/g, []);
  });
});
