import { describe, it, expect } from 'vitest';
import {
  decode,
  encode,
  ProtocolError,
  type Message,
  type MessageOfType,
  type MessageType,
  type ProtocolErrorCode,
} from '@testcloud/protocol';
// Internal: the codec's own list of message types, to check the samples below cover all of them.
import { bodyParsers } from '../../packages/protocol/dist/message-schemas.js';
import { jobResult } from '../helpers/job-result.js';

const HEADER = Buffer.from([0x54, 0x43, 0x4c, 0x44, 0x01]); // "TCLD" + version 1

const result = jobResult({ id: 7, attempt: 2, cmd: "printf 'h\\303\\251llo'", stdout: 'héllo ✓\n', duration: 12.345, worker: 'host:1234' });

/** One message of every type; the mapped type makes leaving one out a type error. */
const samples: { [T in MessageType]: MessageOfType<T>[] } = {
  ready: [{ type: 'ready', worker: 'w1', host: 'localhost', pid: 4321, slots: 4, weight: 1.5 }],
  queued: [{ type: 'queued', jobs: [{ id: 0, attempt: 1 }, { id: 3, attempt: 2, worker: 'w1' }] }],
  result: [
    { type: 'result', results: [result] },
    {
      type: 'result',
      results: [
        {
          ...result,
          id: 0,
          attempt: 1,
          exitcode: null,
          signal: 'SIGKILL',
          stdout: Buffer.from([0xff, 0xfe]).toString('base64'),
          stdoutEncoding: 'base64',
          stderr: 'killed',
          stdoutTruncated: 10,
          stderrTruncated: 3,
          stopped: 'timeout',
        },
        { ...result, id: 1, exitcode: null, error: 'spawn sh ENOENT', stopped: 'cancelled' },
        { ...result, id: 2, exitcode: 3, stopped: 'idle-timeout', paused: 250 },
        { ...result, id: 3, exitcode: null, signal: 'SIGKILL', stopped: 'lost' },
      ],
    },
  ],
  ok: [
    { type: 'ok', broker: '0123456789abcdef', heartbeat: 1000 },
    { type: 'ok', broker: '0123456789abcdef', heartbeat: 500, window: 100 },
  ],
  job: [
    {
      type: 'job',
      jobs: [
        { id: 5, cmd: 'echo hi', attempt: 1, timeout: 0, idleTimeout: 0 },
        { id: 6, cmd: 'sleep 9', attempt: 3, timeout: 500, idleTimeout: 100, env: { LANG: 'C.UTF-8', EMPTY: '' }, cwd: 'sub/dir' },
      ],
    },
  ],
  hello: [{ type: 'hello', client: 'testclient:99' }],
  submit: [
    { type: 'submit', jobs: [{ id: 0, cmd: 'true' }] },
    { type: 'submit', jobs: [{ id: 1, cmd: 'sleep 1', timeout: 100, idleTimeout: 50, retries: 2, priority: -3, env: { A: '1' }, cwd: 'pkg' }] },
  ],
  error: [
    { type: 'error', code: 'TESTCLOUD_QUEUE_FULL', message: 'the queue is full', ids: [1, 2] },
    { type: 'error', code: 'X', message: '', ids: [] },
  ],
  requeue: [{ type: 'requeue', jobs: [{ id: 4, attempt: 1 }], reason: 'load above --max-load' }],
  cancel: [{ type: 'cancel', jobs: [{ id: 4, attempt: 1 }, { id: 9, attempt: 2 }] }],
  heartbeat: [
    { type: 'heartbeat' },
    { type: 'heartbeat', broker: '0123456789abcdef' },
    { type: 'heartbeat', state: 'busy', offered: 3, load: { load: 0.5, cpu: 42.5, freeMem: 2048 } },
  ],
  bye: [{ type: 'bye', reason: 'worker shutting down' }],
};

const allSamples: Message[] = Object.values(samples).flat();

function frames(type: string, body: unknown, header: Buffer = HEADER): Buffer[] {
  return [header, Buffer.from(type, 'latin1'), Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8')];
}

function decodeError(input: readonly Buffer[], options?: Parameters<typeof decode>[1]): ProtocolError {
  try {
    decode(input, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('decode accepted the message');
}

function expectRejected(input: readonly Buffer[], code: ProtocolErrorCode, options?: Parameters<typeof decode>[1]): void {
  const error = decodeError(input, options);
  expect(error.code).toBe(code);
  expect(error.name).toBe('ProtocolError');
}

const readyBody = { worker: 'w1', host: 'h', pid: 1, slots: 2, weight: 1 };

describe('codec round trip', () => {
  it('has a sample of every message type the codec knows', () => {
    expect(Object.keys(samples).sort()).toEqual(Object.keys(bodyParsers).sort());
  });

  it.each(allSamples.map((message) => [message.type, message] as const))('decodes an encoded %s message to an equal message', (_type, message) => {
    expect(decode(encode(message))).toEqual(message);
  });

  it('lays a message out as signature+version, upper-case type and a JSON body without the type', () => {
    const [header, type, body] = encode({ type: 'hello', client: 'c1' });
    expect(header).toEqual(Buffer.from('TCLD\x01', 'latin1'));
    expect(type!.toString('latin1')).toBe('HELLO');
    expect(JSON.parse(body!.toString('utf8'))).toEqual({ client: 'c1' });
  });

  it('keeps non-ASCII text intact', () => {
    const message: Message = { type: 'submit', jobs: [{ id: 0, cmd: "echo 'héllo wörld ✓ 🚀'" }] };
    expect(decode(encode(message))).toEqual(message);
  });
});

describe('codec rejections', () => {
  it('rejects a bad signature frame', () => {
    expectRejected(frames('READY', readyBody, Buffer.from('XCLD\x01', 'latin1')), 'TESTCLOUD_PROTOCOL_SIGNATURE');
    expectRejected(frames('READY', readyBody, Buffer.from('TCLD', 'latin1')), 'TESTCLOUD_PROTOCOL_SIGNATURE');
    expectRejected(frames('READY', readyBody, Buffer.from('TCLD\x01\x00', 'latin1')), 'TESTCLOUD_PROTOCOL_SIGNATURE');
    expectRejected([], 'TESTCLOUD_PROTOCOL_SIGNATURE');
  });

  it('rejects another protocol version', () => {
    expectRejected(frames('READY', readyBody, Buffer.from('TCLD\x02', 'latin1')), 'TESTCLOUD_PROTOCOL_VERSION');
    expectRejected(frames('READY', readyBody, Buffer.from('TCLD\x00', 'latin1')), 'TESTCLOUD_PROTOCOL_VERSION');
  });

  it('rejects a message with the wrong number of frames', () => {
    const good = encode({ type: 'heartbeat' });
    expectRejected([HEADER], 'TESTCLOUD_PROTOCOL_FRAMES');
    expectRejected(good.slice(0, 2), 'TESTCLOUD_PROTOCOL_FRAMES');
    expectRejected([...good, Buffer.from('extra')], 'TESTCLOUD_PROTOCOL_FRAMES');
  });

  it('rejects an unknown message type, matching names exactly', () => {
    expectRejected(frames('NOPE', {}), 'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE');
    expectRejected(frames('ready', readyBody), 'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE');
    expectRejected(frames('', {}), 'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE');
    expectRejected(frames('__PROTO__', {}), 'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE');
  });

  it('rejects a body that is not JSON', () => {
    expectRejected(frames('READY', '{"worker": "w1",'), 'TESTCLOUD_PROTOCOL_JSON');
    expectRejected(frames('HEARTBEAT', ''), 'TESTCLOUD_PROTOCOL_JSON');
    expectRejected([HEADER, Buffer.from('HEARTBEAT'), Buffer.from([0x7b, 0xff, 0x7d])], 'TESTCLOUD_PROTOCOL_JSON');
  });

  it('rejects fields of the wrong type', () => {
    expectRejected(frames('READY', { ...readyBody, slots: '2' }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('READY', { ...readyBody, pid: 1.5 }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('READY', { ...readyBody, slots: 0 }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('READY', { ...readyBody, weight: -1 }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [{ id: -1, cmd: 'true' }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [{ id: 0, cmd: 42 }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: { id: 0, cmd: 'true' } }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('RESULT', { results: [{ ...result, stdoutEncoding: 'hex' }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('RESULT', { results: [{ ...result, stopped: 'bored' }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('HEARTBEAT', { state: 'asleep' }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'env', env: { A: 1 } }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'env', env: { 'A=B': '1' } }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'env', env: ['A=1'] }] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('HELLO', 'null'), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('HELLO', '["c1"]'), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('HELLO', '"c1"'), 'TESTCLOUD_PROTOCOL_INVALID');
  });

  it('rejects missing fields and empty job lists', () => {
    const { pid: _pid, ...noPid } = readyBody;
    expectRejected(frames('READY', noPid), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('BYE', {}), 'TESTCLOUD_PROTOCOL_INVALID');
    const { exitcode: _exitcode, ...noExitcode } = result;
    expectRejected(frames('RESULT', { results: [noExitcode] }), 'TESTCLOUD_PROTOCOL_INVALID');
    expectRejected(frames('SUBMIT', { jobs: [] }), 'TESTCLOUD_PROTOCOL_INVALID');
  });

  it('names the offending field in the error message', () => {
    expect(decodeError(frames('READY', { ...readyBody, slots: '2' })).message).toContain('slots');
    expect(decodeError(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'true' }, { id: 1 }] })).message).toContain('jobs[1].cmd');
  });

  it('rejects a message larger than maxMessageSize, counting every frame', () => {
    const message = encode({ type: 'hello', client: 'x'.repeat(100) });
    const size = message.reduce((sum, frame) => sum + frame.length, 0);
    expect(decode(message, { maxMessageSize: size })).toEqual({ type: 'hello', client: 'x'.repeat(100) });
    expectRejected(message, 'TESTCLOUD_PROTOCOL_TOO_LARGE', { maxMessageSize: size - 1 });
  });

  it('checks the size before anything else', () => {
    expectRejected([Buffer.alloc(64)], 'TESTCLOUD_PROTOCOL_TOO_LARGE', { maxMessageSize: 63 });
  });
});

describe('codec hygiene', () => {
  it('strips unknown extra fields, at the top and inside nested objects', () => {
    const decoded = decode(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'true', notAField: 9 }], extra: 'x' }));
    expect(decoded).toEqual({ type: 'submit', jobs: [{ id: 0, cmd: 'true' }] });
    expect(Object.keys(decoded)).toEqual(['type', 'jobs']);
    expect(Object.keys((decoded as MessageOfType<'submit'>).jobs[0]!)).toEqual(['id', 'cmd']);
  });

  it('does not let a "type" key in the body change the message type', () => {
    expect(decode(frames('HELLO', { type: 'bye', client: 'c1', reason: 'x' }))).toEqual({ type: 'hello', client: 'c1' });
  });

  it('does not let a __proto__ key pollute any prototype', () => {
    const body = '{"__proto__": {"polluted": true}, "client": "c1"}';
    const decoded = decode(frames('HELLO', body));
    expect(decoded).toEqual({ type: 'hello', client: 'c1' });
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.hasOwn(decoded, '__proto__')).toBe(false);
    expect((decoded as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    const nested = decode(frames('SUBMIT', '{"jobs": [{"id": 0, "cmd": "true", "__proto__": {"cmd": "rm -rf /", "admin": true}}]}'));
    const job = (nested as MessageOfType<'submit'>).jobs[0]!;
    expect(job).toEqual({ id: 0, cmd: 'true' });
    expect(Object.getPrototypeOf(job)).toBe(Object.prototype);
    expect((job as unknown as Record<string, unknown>).admin).toBeUndefined();
  });

  it('keeps a __proto__ variable of a job environment as a plain variable', () => {
    const decoded = decode(frames('SUBMIT', '{"jobs": [{"id": 0, "cmd": "env", "env": {"__proto__": "x", "A": "1"}}]}'));
    const env = (decoded as MessageOfType<'submit'>).jobs[0]!.env!;
    expect(Object.keys(env).sort()).toEqual(['A', '__proto__']);
    expect(env['__proto__']).toBe('x');
    expect(({} as Record<string, unknown>).A).toBeUndefined();
  });

  it('does not take a required field from a __proto__ key', () => {
    expectRejected(frames('HELLO', '{"__proto__": {"client": "c1"}}'), 'TESTCLOUD_PROTOCOL_INVALID');
  });
});
