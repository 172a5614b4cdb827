import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname } from 'node:path';
import { decodeStream, type JobResult } from '@testcloud/protocol';

/**
 * `--joblog FILE`: one line per finished command, in GNU parallel's format, so the tools that
 * read its job logs read ours:
 *
 *   Seq  Host  Starttime  JobRuntime  Send  Receive  Exitval  Signal  Command     (tab-separated)
 *
 * Seq is the command's position in the input (from 1), Host the worker that ran it, Starttime
 * the Unix time it started and JobRuntime its duration (seconds, 3 decimals), Receive the bytes
 * of stdout, Exitval the exit code (-1 when there is none: killed, timed out, could not start)
 * and Signal the number of the signal that killed it (0 when none). Command is the rest of the
 * line, tabs included. Each line is written as soon as its result arrives, so a job log is
 * complete up to the moment a run was killed.
 */
export const JOBLOG_HEADER = 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand';

export interface JobLogEntry {
  seq: number;
  host: string;
  /** Unix time in ms. */
  start: number;
  /** ms. */
  runtime: number;
  receive: number;
  exitval: number;
  signal: number;
  cmd: string;
}

export class JobLog {
  private fd: number | undefined;

  /** Opens FILE: appending when resuming a run, else starting it afresh. The header opens an empty file. */
  constructor(
    readonly file: string,
    append: boolean,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.fd = openSync(file, append ? 'a' : 'w');
    if (fstatSync(this.fd).size === 0) writeSync(this.fd, `${JOBLOG_HEADER}\n`);
  }

  /** Logs a finished command; `seq` is its input position from 1, `start` when it started (Unix ms). */
  record(seq: number, result: JobResult, start: number): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, `${formatEntry(toEntry(seq, result, start))}\n`);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export function toEntry(seq: number, result: JobResult, start: number): JobLogEntry {
  return {
    seq,
    host: result.worker,
    start,
    runtime: result.duration,
    receive: decodeStream(result.stdout, result.stdoutEncoding).length,
    exitval: result.exitcode ?? -1,
    signal: result.signal === null ? 0 : (constants.signals as Record<string, number>)[result.signal] ?? 0,
    cmd: result.cmd,
  };
}

export function formatEntry(entry: JobLogEntry): string {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  return [entry.seq, entry.host, seconds(entry.start), seconds(entry.runtime), 0, entry.receive, entry.exitval, entry.signal, entry.cmd].join('\t');
}

/** Parses a job log; lines that are not entries (the header, a torn last line) are skipped. */
export function parseJobLog(text: string): JobLogEntry[] {
  const entries: JobLogEntry[] = [];
  for (const line of text.split('\n')) {
    const columns = line.split('\t');
    if (columns.length < 9 || line.startsWith('Seq\t')) continue;
    const [seq, , start, runtime, , receive, exitval, signal] = columns.map(Number);
    if (![seq, start, runtime, receive, exitval, signal].every(Number.isFinite)) continue;
    entries.push({
      seq: seq!,
      host: columns[1]!,
      start: start! * 1000,
      runtime: runtime! * 1000,
      receive: receive!,
      exitval: exitval!,
      signal: signal!,
      cmd: columns.slice(8).join('\t'),
    });
  }
  return entries;
}

export function readJobLog(file: string): JobLogEntry[] {
  try {
    return parseJobLog(readFileSync(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []; // the first run of a resumable job
    throw error;
  }
}

/**
 * What `--resume` and `--resume-failed` skip, matched by command line (not by position, so a CI
 * job whose list of test files changed between two attempts still resumes correctly). A
 * command listed k times in the input is skipped as many times as the log says it finished
 * (`--resume`) or passed (`--resume-failed`), at most k.
 */
export class ResumeFilter {
  private readonly remaining = new Map<string, number>();

  constructor(entries: readonly JobLogEntry[], onlyPassed: boolean) {
    for (const entry of entries) {
      if (onlyPassed && (entry.exitval !== 0 || entry.signal !== 0)) continue;
      this.remaining.set(entry.cmd, (this.remaining.get(entry.cmd) ?? 0) + 1);
    }
  }

  /** Whether to skip this occurrence of `cmd` (each call uses up one logged finish). */
  skip(cmd: string): boolean {
    const left = this.remaining.get(cmd) ?? 0;
    if (left === 0) return false;
    this.remaining.set(cmd, left - 1);
    return true;
  }
}
