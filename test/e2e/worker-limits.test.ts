import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Router } from 'zeromq';
import { encode, type JobSpec, type Message } from '@testcloud/protocol';
import { sizedBatches } from '@testcloud/worker';
import { jobResult } from '../helpers/job-result.js';
import { RawPeer } from '../helpers/raw-peer.js';
import { spawnBin } from '../helpers/processes.js';

/** A fake broker the worker under test connects to: it answers READY and heartbeats, nothing else. */
async function fakeBroker(maxMessageSize = -1) {
  const socket = new Router({ linger: 0, handover: true, sendHighWaterMark: 0, receiveHighWaterMark: 0, maxMessageSize });
  await socket.bind('tcp://127.0.0.1:*');
  const reply = (peer: Buffer, message: Message) => broker.send([peer, ...encode(message)]);
  const broker: RawPeer = new RawPeer(socket, true, (message, peer) => {
    if (message.type === 'ready') void reply(peer!, { type: 'ok', broker: 'fake', heartbeat: 200 }).catch(() => {});
    if (message.type === 'heartbeat') void reply(peer!, { type: 'heartbeat', broker: 'fake' }).catch(() => {});
  });
  return { broker, endpoint: socket.lastEndpoint!, reply };
}

const job = (id: number, cmd: string): JobSpec => ({ id, cmd, attempt: 1, timeout: 0, idleTimeout: 0 });

describe('a worker protects itself from its broker', () => {
  it('runs no more jobs than its slots and hands the rest back unrun', async () => {
    const { broker, endpoint, reply } = await fakeBroker();
    const worker = spawnBin('testworker', ['--broker', endpoint, '-c', '2', '--prefetch', '0']);
    await worker.waitForLine(/connected to broker/);
    const peer = await broker.waitFor((m, from) => (m.type === 'ready' ? from : undefined), 'READY', worker);
    await reply(peer!, { type: 'job', jobs: [1, 2, 3, 4, 5].map((id) => job(id, `echo job-${id}`)) });
    const handedBack = new Map<number, string>();
    await broker.waitFor((m) => {
      if (m.type === 'requeue') for (const j of m.jobs) handedBack.set(j.id, m.reason);
      return handedBack.size === 3 ? true : undefined;
    }, 'three jobs handed back', worker);
    expect([...handedBack.keys()].sort()).toEqual([3, 4, 5]);
    for (const reason of handedBack.values()) expect(reason).toMatch(/all 2 slot\(s\) are busy/);
    const done = new Set<number>();
    await broker.waitFor((m) => {
      if (m.type === 'result') for (const r of m.results) done.add(r.id);
      return done.size === 2 ? true : undefined;
    }, 'two results', worker);
    expect([...done].sort()).toEqual([1, 2]);
  });

  it('holds at most --prefetch jobs beyond its slots, starting each only when a slot frees', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'testcloud-prefetch-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const gate = join(dir, 'gate');
    execFileSync('mkfifo', [gate]);
    const { broker, endpoint, reply } = await fakeBroker();
    const worker = spawnBin('testworker', ['--broker', endpoint, '-c', '2', '--prefetch', '1']);
    await worker.waitForLine(/connected to broker/);
    const peer = await broker.waitFor((m, from) => (m.type === 'ready' ? from : undefined), 'READY', worker);
    expect(broker.received.find(({ message }) => message.type === 'ready')?.message).toMatchObject({ slots: 2, prefetch: 1 });
    // Jobs 1 and 2 hold both slots until the gate opens and leave a mark as they end; job 3
    // lists the marks, so its output shows whether it waited for a slot; 4 and 5 do not fit.
    const blocked = (id: number) => `read line < '${gate}' && touch '${dir}/ended-${id}'`;
    await reply(peer!, { type: 'job', jobs: [job(1, blocked(1)), job(2, blocked(2)), job(3, `ls '${dir}'`), job(4, 'true'), job(5, 'true')] });
    const handedBack = new Set<number>();
    await broker.waitFor((m) => {
      if (m.type === 'requeue') for (const j of m.jobs) handedBack.add(j.id);
      return handedBack.size === 2 ? true : undefined;
    }, 'two jobs handed back', worker);
    expect([...handedBack].sort()).toEqual([4, 5]);
    // Held open for writing by the test, so the lines wait in the pipe for whichever reader comes.
    const writer = openSync(gate, constants.O_RDWR | constants.O_NONBLOCK);
    onTestFinished(() => closeSync(writer));
    writeSync(writer, 'open\nopen\n');
    const results = new Map<number, string>();
    await broker.waitFor((m) => {
      if (m.type === 'result') for (const r of m.results) results.set(r.id, r.stdout);
      return results.size === 3 ? true : undefined;
    }, 'three results', worker);
    expect(results.get(3)).toMatch(/ended-[12]/);
  });

  it('confirms a prefetched job (QUEUED) only once it starts, and hands back the unstarted ones when it drains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'testcloud-prefetch-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const gates = [1, 2].map((n) => join(dir, `gate-${n}`));
    for (const gate of gates) execFileSync('mkfifo', [gate]);
    const writers = gates.map((gate) => openSync(gate, constants.O_RDWR | constants.O_NONBLOCK));
    onTestFinished(() => writers.forEach((fd) => closeSync(fd)));
    const { broker, endpoint, reply } = await fakeBroker();
    const worker = spawnBin('testworker', ['--broker', endpoint, '-c', '1', '--prefetch', '3']);
    await worker.waitForLine(/connected to broker/);
    const peer = await broker.waitFor((m, from) => (m.type === 'ready' ? from : undefined), 'READY', worker);
    // One slot: job 1 runs until gate 1 opens; 2 waits, then runs until gate 2 opens; 3 and 4 wait.
    const blocked = (n: number) => `read line < '${gates[n - 1]}'; echo $line`;
    await reply(peer!, { type: 'job', jobs: [job(1, blocked(1)), job(2, blocked(2)), job(3, 'true'), job(4, 'true')] });
    await broker.waitFor((m) => (m.type === 'queued' && m.jobs.some((j) => j.id === 1) ? true : undefined), 'QUEUED for job 1', worker);
    writeSync(writers[0]!, 'one\n');
    await broker.waitFor((m) => (m.type === 'queued' && m.jobs.some((j) => j.id === 2) ? true : undefined), 'QUEUED for job 2', worker);
    // Job 2 was confirmed only after job 1 had ended and freed the slot.
    const order = broker.received.map(({ message }) => message).filter((m) => m.type === 'queued' || m.type === 'result');
    const resultOf1 = order.findIndex((m) => m.type === 'result' && m.results.some((r) => r.id === 1));
    const queuedOf2 = order.findIndex((m) => m.type === 'queued' && m.jobs.some((j) => j.id === 2));
    expect(resultOf1).toBeGreaterThanOrEqual(0);
    expect(queuedOf2).toBeGreaterThan(resultOf1);
    // Draining: jobs 3 and 4 never started, so they go back to the broker at once; 2 finishes.
    worker.kill('SIGTERM');
    const handedBack = new Map<number, string>();
    await broker.waitFor((m) => {
      if (m.type === 'requeue') for (const j of m.jobs) handedBack.set(j.id, m.reason);
      return handedBack.size === 2 ? true : undefined;
    }, 'jobs 3 and 4 handed back', worker);
    expect([...handedBack.keys()].sort()).toEqual([3, 4]);
    for (const reason of handedBack.values()) expect(reason).toMatch(/draining/);
    writeSync(writers[1]!, 'two\n');
    await broker.waitFor((m) => (m.type === 'result' && m.results.some((r) => r.id === 2 && r.stdout === 'two\n') ? true : undefined), 'the result of job 2', worker);
    expect(await worker.waitForExit()).toEqual({ code: 0, signal: null });
    expect(broker.received.some(({ message }) => message.type === 'queued' && message.jobs.some((j) => j.id === 3 || j.id === 4))).toBe(false);
  });

  it('delivers output that JSON inflates six-fold within --max-message-size, without the link dropping', async () => {
    // The fake broker enforces the same limit as a real one would: a larger message drops the link.
    const { broker, endpoint, reply } = await fakeBroker(1024 * 1024);
    // 4 slots x 100 KiB of NUL bytes: as JSON each \u0000 takes 6 bytes, 600 KiB a result. Whether
    // they finish in one turn of the worker's loop is up to timing; sizedBatches (below) is what
    // keeps a batch of them under the limit when they do.
    const worker = spawnBin('testworker', ['--broker', endpoint, '-c', '4', '--max-message-size', '1MiB', '--max-output', '100KiB']);
    await worker.waitForLine(/connected to broker/);
    const peer = await broker.waitFor((m, from) => (m.type === 'ready' ? from : undefined), 'READY', worker);
    const readies = () => broker.received.filter(({ message }) => message.type === 'ready').length;
    await reply(peer!, { type: 'job', jobs: [1, 2, 3, 4].map((id) => job(id, 'head -c 102400 /dev/zero')) });
    const done = new Map<number, number>();
    await broker.waitFor((m) => {
      if (m.type === 'result') for (const r of m.results) done.set(r.id, r.stdout.length);
      return done.size === 4 ? true : undefined;
    }, 'four results', worker);
    expect([...done.values()]).toEqual([102400, 102400, 102400, 102400]);
    expect(readies()).toBe(1); // the connection never dropped for an oversized message
  });
});

describe('sizedBatches', () => {
  const result = (id: number, bytes: number) => jobResult({ id, cmd: 'x', stdout: 'a'.repeat(bytes) });

  it('keeps small results together and gives a large one a message of its own', () => {
    const batches = sizedBatches([result(1, 10), result(2, 10), result(3, 3_000_000), result(4, 10)], 16 * 1024 * 1024);
    expect(batches.map((b) => b.map((r) => r.id))).toEqual([[1, 2], [3], [4]]);
  });

  it('never returns an empty batch', () => {
    expect(sizedBatches([], 1024)).toEqual([]);
    expect(sizedBatches([result(1, 5000)], 1024).map((b) => b.length)).toEqual([1]);
  });
});
