import { decode, encode, type Message } from '@testcloud/protocol';
import { jobResult } from './job-result.js';

/** A small seeded PRNG (mulberry32): a failing fuzz run can be replayed from its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One valid message of every type, the seeds of the mutations. Every command in them is `true`:
 * whatever survives mutation and reaches a worker must be harmless.
 */
export const TEMPLATES: Message[] = [
  { type: 'ready', worker: 'fuzz', host: 'fuzz', pid: 1, slots: 2, weight: 1 },
  { type: 'queued', jobs: [{ id: 0, attempt: 1 }] },
  { type: 'result', results: [jobResult({ cmd: 'true', worker: 'fuzz' })] },
  { type: 'ok', broker: 'fuzz-broker', heartbeat: 200 },
  { type: 'job', jobs: [{ id: 1_000_000, cmd: 'true', attempt: 1, timeout: 0, idleTimeout: 0 }] },
  { type: 'hello', client: 'fuzz' },
  { type: 'submit', jobs: [{ id: 0, cmd: 'true' }] },
  { type: 'error', code: 'TESTCLOUD_FUZZ', message: 'fuzz', ids: [0] },
  { type: 'requeue', jobs: [{ id: 0, attempt: 1 }], reason: 'fuzz' },
  { type: 'cancel', jobs: [{ id: 0, attempt: 1 }] },
  { type: 'heartbeat' },
  { type: 'heartbeat', broker: 'fuzz-broker', state: 'busy', offered: 1, load: { load: 0.5, cpu: 10, freeMem: 100 } },
  { type: 'bye', reason: 'fuzz' },
];

const FIELD_NAMES = ['id', 'jobs', 'cmd', 'attempt', 'results', 'broker', 'heartbeat', 'slots', 'weight', 'worker', 'reason', 'type', '__proto__', 'constructor', 'toString'];
const ODD_NUMBERS = [-1, 0, 1, 1.5, 2 ** 53, -(2 ** 53), 1e308, 4096, 4097, 2 ** 31];

export type Mutation =
  | 'random'
  | 'truncate'
  | 'bit-flip'
  | 'version'
  | 'signature'
  | 'frame-count'
  | 'wrong-shape'
  | 'near-miss'
  | 'unknown-type'
  | 'not-json'
  | 'too-large'
  | 'valid';

export const MUTATIONS: Mutation[] = ['random', 'truncate', 'bit-flip', 'version', 'signature', 'frame-count', 'wrong-shape', 'near-miss', 'unknown-type', 'not-json', 'too-large', 'valid'];

/**
 * Garbage for a testcloud peer: random frames, and valid messages truncated, bit-flipped, with a
 * wrong version or signature, too many or too few frames, JSON of the wrong shape, an unknown type,
 * a body that is not JSON, or more than `maxMessageSize` bytes in all (each frame under it, so the
 * message gets past ZeroMQ to the codec). Anything that still decodes as a JOB or SUBMIT carries
 * only `true`: nothing else is ever run.
 */
export function* fuzzMessages(seed: number, count: number, maxMessageSize: number): Generator<{ mutation: Mutation; frames: Buffer[] }> {
  const rand = random(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const json = (depth: number): unknown => {
    switch (int(depth > 2 ? 5 : 7)) {
      case 0:
        return null;
      case 1:
        return rand() < 0.5;
      case 2:
        return pick(ODD_NUMBERS);
      case 3:
        return pick(['', 'true', '__proto__', 'x'.repeat(int(300)), '\u0000\ud800']);
      case 4:
        return int(1000);
      case 5:
        return Array.from({ length: int(4) }, () => json(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(FIELD_NAMES), json(depth + 1)]));
    }
  };

  for (let i = 0; i < count; i++) {
    const mutation = pick(MUTATIONS);
    const template = pick(TEMPLATES);
    let frames = encode(template).map((frame) => Buffer.from(frame));
    switch (mutation) {
      case 'random':
        frames = Array.from({ length: int(7) }, () => bytes(int(100)));
        break;
      case 'truncate':
        if (rand() < 0.3) frames = frames.slice(0, int(frames.length));
        else {
          const at = int(frames.length);
          frames[at] = frames[at]!.subarray(0, int(frames[at]!.length));
        }
        break;
      case 'bit-flip':
        for (let flips = 1 + int(8); flips > 0; flips--) {
          const frame = frames[int(frames.length)]!;
          if (frame.length > 0) frame[int(frame.length)]! ^= 1 << int(8);
        }
        break;
      case 'version':
        frames[0]![4] = pick([0, 2, 3, 127, 255]);
        break;
      case 'signature':
        frames[0] = bytes(int(2) === 0 ? 5 : int(10));
        break;
      case 'frame-count':
        if (rand() < 0.5) frames = frames.slice(0, 1 + int(2));
        else for (let extra = 1 + int(5); extra > 0; extra--) frames.push(bytes(int(20)));
        break;
      case 'wrong-shape':
        frames[2] = Buffer.from(JSON.stringify(json(0)) ?? 'null');
        break;
      case 'near-miss': {
        // The template's body with one field replaced, removed, or added.
        const body = JSON.parse(frames[2]!.toString()) as Record<string, unknown>;
        const key = rand() < 0.8 && Object.keys(body).length > 0 ? pick(Object.keys(body)) : pick(FIELD_NAMES);
        if (rand() < 0.2) delete body[key];
        else body[key] = json(1);
        frames[2] = Buffer.from(JSON.stringify(body));
        break;
      }
      case 'unknown-type':
        frames[1] = Buffer.from(pick(['', 'ready', 'PING', 'JOBS', 'HEARTBEAT ', '\u00ff', 'x'.repeat(100)]), 'latin1');
        break;
      case 'not-json':
        frames[2] = rand() < 0.5 ? bytes(int(50)) : Buffer.from(pick(['{', '{"jobs":', 'undefined', "{'a':1}", '[1,2', '']));
        break;
      case 'too-large': {
        // Every frame fits under the limit, the message does not.
        const half = Math.floor(maxMessageSize / 2) + 1;
        frames = [frames[0]!, frames[1]!, Buffer.alloc(half, 0x20), Buffer.alloc(half, 0x20)];
        break;
      }
      case 'valid':
        break;
    }
    if (!isHarmless(frames, maxMessageSize)) frames = [bytes(int(100))];
    yield { mutation, frames };
  }
}

/** Fields a fuzzed job may carry: nothing that changes where or how `true` runs (no env, no cwd). */
const PLAIN_JOB_FIELDS = new Set(['id', 'cmd', 'attempt', 'timeout', 'idleTimeout', 'retries', 'priority']);

/** False for frames that decode to a JOB or SUBMIT of anything but a plain `true`. */
export function isHarmless(frames: Buffer[], maxMessageSize: number): boolean {
  let message: Message;
  try {
    message = decode(frames, { maxMessageSize });
  } catch {
    return true;
  }
  if (message.type !== 'job' && message.type !== 'submit') return true;
  return message.jobs.every((job) => job.cmd === 'true' && Object.keys(job).every((key) => PLAIN_JOB_FIELDS.has(key)));
}
