import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { hashResults, ResultHasher, resultLeaf, type JobResult } from '@testcloud/protocol';

type Hashed = Pick<JobResult, 'id' | 'cmd' | 'exitcode' | 'signal' | 'stdout' | 'stdoutEncoding'>;

function ok(id: number, cmd: string, stdout: string, exitcode: number | null = 0): Hashed {
  return { id, cmd, exitcode, signal: null, stdout, stdoutEncoding: 'utf8' };
}

const results: Hashed[] = [
  ok(0, 'echo a', 'a\n'),
  ok(1, 'exit 3', '', 3),
  { id: 2, cmd: 'kill -9 $$', exitcode: null, signal: 'SIGKILL', stdout: '', stdoutEncoding: 'utf8' },
  ok(3, 'seq 3', '1\n2\n3\n'),
  { id: 4, cmd: 'nonexistent', exitcode: null, signal: null, stdout: '', stdoutEncoding: 'utf8' },
];

/** The leaf as docs and result-hash.ts describe it, written out again independently. */
function specLeaf(cmd: string, status: string, stdout: Buffer): Buffer {
  const hash = createHash('sha1');
  for (const part of [Buffer.from(cmd, 'utf8'), Buffer.from(status, 'ascii'), stdout]) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    hash.update(length).update(part);
  }
  return hash.digest();
}

function base64(bytes: number[] | Buffer): string {
  return Buffer.from(bytes).toString('base64');
}

describe('result hash', () => {
  it('is the same whatever order the results arrive in', () => {
    const inOrder = hashResults(results);
    expect(inOrder).toMatch(/^[0-9a-f]{40}$/);
    expect(hashResults([...results].reverse())).toBe(inOrder);
    expect(hashResults([results[3]!, results[0]!, results[4]!, results[2]!, results[1]!])).toBe(inOrder);
  });

  it('follows the documented layout: SHA-1 over the leaves in id order', () => {
    const leaves = [
      specLeaf('echo a', '0', Buffer.from('a\n')),
      specLeaf('exit 3', '3', Buffer.alloc(0)),
      specLeaf('kill -9 $$', 'signal:SIGKILL', Buffer.alloc(0)),
      specLeaf('seq 3', '0', Buffer.from('1\n2\n3\n')),
      specLeaf('nonexistent', 'error', Buffer.alloc(0)),
    ];
    expect(hashResults(results)).toBe(createHash('sha1').update(Buffer.concat(leaves)).digest('hex'));
  });

  it('gives the worked example of docs/protocol.md: seq 5 | sed \'s/^/echo /\'', () => {
    const results = [1, 2, 3, 4, 5].map((n) => ({ id: n - 1, cmd: `echo ${n}`, exitcode: 0, signal: null, stdout: `${n}\n`, stdoutEncoding: 'utf8' as const }));
    expect(resultLeaf(results[0]!).toString('hex')).toBe('d1c92ab4cbba07694698a38d554ddc447378e0f7');
    expect(hashResults(results)).toBe('2c338aa1e53bc4d77da25ac9f53019c024c9871c');
    expect(hashResults([])).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
  });

  it('changes when a stdout changes', () => {
    const changed = results.map((r) => (r.id === 3 ? { ...r, stdout: '1\n2\n4\n' } : r));
    expect(hashResults(changed)).not.toBe(hashResults(results));
  });

  it('changes when an exit code changes, or becomes a signal', () => {
    const exit4 = results.map((r) => (r.id === 1 ? { ...r, exitcode: 4 } : r));
    const signalled = results.map((r) => (r.id === 1 ? { ...r, exitcode: null, signal: 'SIGTERM' } : r));
    expect(new Set([hashResults(results), hashResults(exit4), hashResults(signalled)]).size).toBe(3);
  });

  it('changes when a command changes', () => {
    const changed = results.map((r) => (r.id === 0 ? { ...r, cmd: 'echo  a' } : r));
    expect(hashResults(changed)).not.toBe(hashResults(results));
  });

  it('changes when two results swap ids', () => {
    const swapped = results.map((r) => (r.id === 0 ? { ...r, id: 3 } : r.id === 3 ? { ...r, id: 0 } : r));
    expect(hashResults(swapped)).not.toBe(hashResults(results));
  });

  it('cannot be fooled by moving bytes between the fields of a leaf', () => {
    expect(resultLeaf(ok(0, 'echo a', 'b'))).not.toEqual(resultLeaf(ok(0, 'echo ', 'ab')));
  });
});

describe('result hash of output carried as base64', () => {
  it('hashes non-UTF-8 stdout by its bytes', () => {
    const ff = { ...ok(0, "printf '\\377\\376'", base64([0xff, 0xfe])), stdoutEncoding: 'base64' as const };
    expect(resultLeaf(ff)).toEqual(specLeaf("printf '\\377\\376'", '0', Buffer.from([0xff, 0xfe])));
    // Decoding both as UTF-8 would give the same two U+FFFD; the bytes differ, so must the hash.
    const fd = { ...ff, stdout: base64([0xfd, 0xfe]) };
    expect(resultLeaf(fd)).not.toEqual(resultLeaf(ff));
  });

  it('hashes valid UTF-8 the same whether it travelled as text or as base64', () => {
    const text = 'héllo wörld ✓\n';
    const asText = ok(0, 'echo', text);
    const asBase64 = { ...ok(0, 'echo', base64(Buffer.from(text, 'utf8'))), stdoutEncoding: 'base64' as const };
    expect(hashResults([asBase64])).toBe(hashResults([asText]));
  });
});

describe('ResultHasher', () => {
  it('buffers results that arrive before their turn and folds them once the gap closes', () => {
    const hasher = new ResultHasher();
    hasher.add(results[2]!);
    hasher.add(results[1]!);
    expect(hasher.contiguous).toBe(0);
    hasher.add(results[0]!);
    expect(hasher.contiguous).toBe(3);
    hasher.add(results[4]!);
    expect(hasher.contiguous).toBe(3);
    hasher.add(results[3]!);
    expect(hasher.contiguous).toBe(5);
    expect(hasher.digest()).toBe(hashResults(results));
  });

  it('ignores a second result with the same id', () => {
    const hasher = new ResultHasher();
    hasher.add(results[1]!);
    hasher.add({ ...results[1]!, stdout: 'late duplicate' });
    hasher.add(results[0]!);
    hasher.add({ ...results[0]!, stdout: 'late duplicate' });
    for (const r of results.slice(2)) hasher.add(r);
    expect(hasher.digest()).toBe(hashResults(results));
  });

  it('refuses to give a digest while a result is missing', () => {
    const hasher = new ResultHasher();
    hasher.add(results[0]!);
    hasher.add(results[2]!);
    expect(() => hasher.digest()).toThrow(/result 1 is missing/);
  });

  it('gives the SHA-1 of nothing for no results', () => {
    expect(hashResults([])).toBe(createHash('sha1').digest('hex'));
  });
});
