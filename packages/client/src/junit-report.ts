import { closeSync, mkdirSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { JobResult } from '@testcloud/protocol';
import { DOCUMENT_TAIL, documentHead, outcomeOf, resultCase, unfinishedCase, type SuiteCounts, type UnfinishedCase } from './junit-xml.js';

export type { UnfinishedCase } from './junit-xml.js';

export interface JUnitOptions {
  /** The <testsuite name> and each <testcase classname>. */
  suite?: string;
  /** When the run started (for the timestamp attribute). */
  startedAt?: Date;
}

/**
 * `--junit FILE`: the run as JUnit XML, the dialect Jenkins, GitLab, GitHub test reporters,
 * Buildkite and CircleCI all read: one <testsuite> with one <testcase> per command, named by
 * the command, `time` in seconds, in input order (the commands without a result last). A
 * command that ran and failed has a <failure> whose message says why ("exit 3", "timed out")
 * and whose text is the tail of its stderr; one that could not start or was lost has an
 * <error>; one a halt cancelled, a resume skipped or an interrupt kept from starting is
 * <skipped>; one a worker had when the run was interrupted has an <error type="interrupted">.
 * Output goes in <system-out> and <system-err>, without terminal colour codes.
 *
 * Each result's testcase is rendered as it arrives and appended to a scratch file beside FILE,
 * so the report holds no output in memory (16 bytes a command for the index). The header's
 * counts are known only at the end: `write()` then copies the testcases out in input order
 * into a temporary file renamed over FILE, so FILE is never half-written.
 */
export class JUnitReport {
  private readonly suite: string;
  private readonly startedAt: Date;
  private readonly scratchFile: string;
  private scratch: number | undefined;
  private scratchUnlinked = false;
  private scratchSize = 0;
  private readonly index = new CaseIndex();
  private readonly counts: SuiteCounts = { tests: 0, failures: 0, errors: 0, skipped: 0 };

  /** Opens the scratch file now, so an unwritable FILE is refused before anything runs. */
  constructor(
    readonly file: string,
    options: JUnitOptions = {},
  ) {
    this.suite = options.suite ?? 'testclient';
    this.startedAt = options.startedAt ?? new Date();
    mkdirSync(dirname(file), { recursive: true });
    this.scratchFile = `${file}.${process.pid}.cases`;
    this.scratch = openSync(this.scratchFile, 'w+');
    try {
      // The open descriptor keeps it: nothing is left behind, however the process ends.
      unlinkSync(this.scratchFile);
      this.scratchUnlinked = true;
    } catch {
      // a file system that cannot unlink an open file: close() removes it
    }
  }

  /** Adds a command's result (any order; ids 0, 1, 2… in input order, at most one result each). */
  add(result: JobResult): void {
    if (this.scratch === undefined) return;
    const bytes = Buffer.from(resultCase(result, this.suite), 'utf8');
    writeAll(this.scratch, bytes, bytes.length, this.scratchSize);
    this.index.set(result.id, this.scratchSize, bytes.length);
    this.scratchSize += bytes.length;
    this.counts.tests++;
    const outcome = outcomeOf(result);
    if (outcome === 'failure') this.counts.failures++;
    else if (outcome === 'error') this.counts.errors++;
  }

  /** Writes FILE: the results added, in input order, then `unfinished` in the order given; then closes. */
  write(elapsed: number, unfinished: readonly UnfinishedCase[]): void {
    if (this.scratch === undefined) return;
    const counts = { ...this.counts };
    for (const { kind } of unfinished) {
      counts.tests++;
      if (kind === 'skipped') counts.skipped++;
      else counts.errors++;
    }
    const temporary = `${this.file}.${process.pid}.tmp`;
    const out = openSync(temporary, 'w');
    try {
      writeText(out, documentHead(this.suite, counts, elapsed, this.startedAt));
      let buffer = Buffer.alloc(0);
      for (const [offset, length] of this.index.inOrder()) {
        if (buffer.length < length) buffer = Buffer.allocUnsafe(length);
        readAll(this.scratch, buffer, length, offset);
        writeAll(out, buffer, length);
      }
      for (const command of unfinished) writeText(out, unfinishedCase(command, this.suite));
      writeText(out, DOCUMENT_TAIL);
    } catch (error) {
      closeSync(out);
      rmSync(temporary, { force: true });
      throw error;
    }
    closeSync(out);
    renameSync(temporary, this.file);
    this.close();
  }

  /** Lets go of the scratch file (write() does; call it when no report is to be written). */
  close(): void {
    if (this.scratch === undefined) return;
    closeSync(this.scratch);
    this.scratch = undefined;
    if (!this.scratchUnlinked) rmSync(this.scratchFile, { force: true });
  }
}

/** Where each command's testcase lies in the scratch file, by id. */
class CaseIndex {
  private offsets: Float64Array = new Float64Array(1024);
  private lengths: Float64Array = new Float64Array(1024);
  private end = 0;

  set(id: number, offset: number, length: number): void {
    if (id >= this.offsets.length) {
      const size = Math.max(this.offsets.length * 2, id + 1);
      this.offsets = grown(this.offsets, size);
      this.lengths = grown(this.lengths, size);
    }
    this.offsets[id] = offset;
    this.lengths[id] = length;
    this.end = Math.max(this.end, id + 1);
  }

  /** [offset, length] of each testcase, by id; ids without a result have none. */
  *inOrder(): Generator<[number, number]> {
    for (let id = 0; id < this.end; id++) if (this.lengths[id]! > 0) yield [this.offsets[id]!, this.lengths[id]!];
  }
}

function grown(array: Float64Array, size: number): Float64Array {
  const bigger = new Float64Array(size);
  bigger.set(array);
  return bigger;
}

function writeText(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  writeAll(fd, bytes, bytes.length);
}

/** writeSync until all `length` bytes are written (at `position`, or the file's current offset). */
function writeAll(fd: number, buffer: Buffer, length: number, position?: number): void {
  for (let done = 0; done < length; ) {
    done += writeSync(fd, buffer, done, length - done, position === undefined ? null : position + done);
  }
}

function readAll(fd: number, buffer: Buffer, length: number, position: number): void {
  for (let done = 0; done < length; ) {
    const read = readSync(fd, buffer, done, length - done, position + done);
    if (read === 0) throw new Error(`the JUnit scratch file ended early, at byte ${position + done}`);
    done += read;
  }
}
