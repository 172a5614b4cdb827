import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import type { JobResult } from './messages.js';
import { decodeStream } from './stream-encoding.js';

/**
 * The result hash: one SHA-1 that two runs of the same deterministic commands share, whichever
 * workers ran them and in whatever order they finished.
 *
 *   leaf(r) = SHA1( u32be(len cmd) ‖ cmd ‖ u32be(len status) ‖ status ‖ u32be(len stdout) ‖ stdout )
 *   hash    = SHA1( leaf(r0) ‖ leaf(r1) ‖ … )   in input order (client id 0, 1, 2, …)
 *
 * cmd is the command's UTF-8 bytes, stdout the raw bytes the command wrote (as kept by the worker),
 * status the ASCII exit code ("0", "3"), or "signal:SIGKILL", or "error" for a command that
 * could not start. Hashing leaves first lets the client hash as results arrive while holding only
 * 20 bytes per result that came early.
 */
export function resultLeaf(result: Pick<JobResult, 'cmd' | 'exitcode' | 'signal' | 'stdout' | 'stdoutEncoding'>): Buffer {
  const status =
    result.exitcode !== null ? String(result.exitcode) : result.signal !== null ? `signal:${result.signal}` : 'error';
  const stdout = decodeStream(result.stdout, result.stdoutEncoding);
  const cmdLength = Buffer.byteLength(result.cmd, 'utf8');
  // One buffer and one hash call per result: the client hashes every result it prints, and a
  // Hash object with six updates cost more than the rest of its work on a tiny one.
  const input = Buffer.allocUnsafe(12 + cmdLength + status.length + stdout.length);
  let at = input.writeUInt32BE(cmdLength, 0);
  at += input.write(result.cmd, at, 'utf8');
  at = input.writeUInt32BE(status.length, at);
  at += input.write(status, at, 'latin1');
  at = input.writeUInt32BE(stdout.length, at);
  stdout.copy(input, at);
  return sha1(input);
}

/** crypto.hash (one shot, no Hash object) where Node has it (20.12 and later). */
const sha1: (data: Buffer) => Buffer =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha1', data, 'buffer') : (data) => createHash('sha1').update(data).digest();

/** Folds leaves in id order (0, 1, 2, …), buffering the ones that arrive early. */
export class ResultHasher {
  private readonly hash = createHash('sha1');
  private readonly early = new Map<number, Buffer>();
  private next = 0;

  add(result: Parameters<typeof resultLeaf>[0] & { id: number }): void {
    if (result.id < this.next || this.early.has(result.id)) return;
    this.early.set(result.id, resultLeaf(result));
    for (let leaf = this.early.get(this.next); leaf !== undefined; leaf = this.early.get(this.next)) {
      this.hash.update(leaf);
      this.early.delete(this.next);
      this.next++;
    }
  }

  /** Number of leaves folded so far: every id below it has been added. */
  get contiguous(): number {
    return this.next;
  }

  /** Hex digest; only meaningful once every id from 0 to count-1 has been added. */
  digest(): string {
    if (this.early.size > 0) throw new Error(`result ${this.next} is missing: cannot hash out of order`);
    return this.hash.digest('hex');
  }
}

/** The hash of a complete set of results, in any order. */
export function hashResults(results: Iterable<Parameters<ResultHasher['add']>[0]>): string {
  const hasher = new ResultHasher();
  for (const r of results) hasher.add(r);
  return hasher.digest();
}
