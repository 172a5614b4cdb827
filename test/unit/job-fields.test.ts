import { describe, expect, it } from 'vitest';
import { decode, encode, ProtocolError, type Message } from '@testcloud/protocol';

const HEADER = Buffer.from([0x54, 0x43, 0x4c, 0x44, 0x01]);
const frames = (type: string, body: unknown) => [HEADER, Buffer.from(type), Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))];

describe('the optional job fields: priority, env and cwd', () => {
  it('round-trip in SUBMIT and JOB, and stay absent when not given', () => {
    const submit: Message = { type: 'submit', jobs: [{ id: 0, cmd: 'env', priority: -3, env: { A: '1', B: 'x=y' }, cwd: 'pkg/a' }, { id: 1, cmd: 'true' }] };
    const job: Message = { type: 'job', jobs: [{ id: 4, cmd: 'env', attempt: 1, timeout: 0, idleTimeout: 0, env: { A: '1' }, cwd: 'sub' }] };
    expect(JSON.parse(JSON.stringify(decode(encode(submit))))).toEqual(submit);
    expect(JSON.parse(JSON.stringify(decode(encode(job))))).toEqual(job);
    expect(Object.keys((decode(encode(submit)) as Extract<Message, { type: 'submit' }>).jobs[1]!)).toEqual(['id', 'cmd']);
  });

  it('keeps a variable called __proto__ as a plain key', () => {
    const decoded = decode(frames('SUBMIT', '{"jobs":[{"id":0,"cmd":"env","env":{"__proto__":"x","polluted":"no"}}]}')) as Extract<Message, { type: 'submit' }>;
    const env = decoded.jobs[0]!.env!;
    expect(Object.keys(env).sort()).toEqual(['__proto__', 'polluted']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['a name with "="', { 'A=B': 'x' }],
    ['an empty name', { '': 'x' }],
    ['a name with NUL', { 'A\u0000': 'x' }],
    ['a value with NUL', { A: 'x\u0000y' }],
    ['a value that is not a string', { A: 1 }],
    ['an array', ['A']],
  ])('rejects an env with %s', (_what, env) => {
    expect(() => decode(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'env', env }] }))).toThrow(ProtocolError);
  });

  it('rejects a priority that is not an integer', () => {
    expect(() => decode(frames('SUBMIT', { jobs: [{ id: 0, cmd: 'x', priority: 1.5 }] }))).toThrow(/priority/);
  });
});
