import type { ChalkInstance } from 'chalk';
import prettyMs from 'pretty-ms';
import { decodeStream, plural, type JobResult } from '@testcloud/protocol';
import { describeFailure, isFailure } from './outcome.js';
import type { RunObserver } from './run.js';
import type { ReportSummary } from './report-summary.js';

export interface Output {
  write(chunk: string | Buffer): unknown;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? prettyMs(ms, { millisecondsDecimalDigits: 2 }) : prettyMs(ms, { secondsDecimalDigits: 2 });
}

export interface HumanOptions {
  /** Print only failed commands and the summary (--quiet). */
  quiet?: boolean;
  /** Start each line of a command's output with the command and a tab (--tag). */
  tag?: boolean;
  /** When to print a command's stderr (--stderr): by default only when it failed. */
  stderr?: 'on-failure' | 'always' | 'never';
}

/** The original testcloud's output: a line per result, its output, then a summary and the hash. */
export class HumanReporter implements RunObserver {
  constructor(
    private readonly out: Output,
    private readonly color: ChalkInstance,
    /** Where warnings go, so they never mix with results on stdout. */
    private readonly err: Output = out,
    private readonly options: HumanOptions = {},
  ) {}

  connected(endpoint: string): void {
    if (!this.options.quiet) this.out.write(`Connecting to ${endpoint}\n`);
  }

  counted(total: number): void {
    if (!this.options.quiet) this.out.write(`Releasing the hounds: ${total} command${total === 1 ? '' : 's'} to execute\n`);
  }

  warning(message: string): void {
    this.err.write(this.color.yellow(`testclient: ${message}\n`));
  }

  result(result: JobResult): void {
    const failed = isFailure(result);
    if (this.options.quiet && !failed) return;
    const c = this.color;
    const attempts = result.attempt > 1 ? ` after ${result.attempt} attempts` : '';
    const paused = result.paused ? ` (paused ${formatDuration(result.paused)} for memory)` : '';
    const time = `⌚${formatDuration(result.duration)}${paused}${attempts}`;
    const head = failed ? c.red.bold(`FAIL! ${result.cmd} ${time} (${describeFailure(result)})`) : `${c.green.bold('OK!')} ${result.cmd} ${c.dim(time)}`;
    this.out.write(`${head}\n`);
    const tag = this.options.tag ? `${result.cmd}\t` : '';
    this.writeStream(result.stdout, result.stdoutEncoding, result.stdoutTruncated, 'stdout', tag, (s) => s);
    const stderr = this.options.stderr ?? 'on-failure';
    if (stderr === 'always' || (stderr === 'on-failure' && failed)) {
      this.writeStream(result.stderr, result.stderrEncoding, result.stderrTruncated, 'stderr', tag, (s) => (failed ? c.red(s) : s));
    }
    this.out.write('\n');
  }

  summary(summary: ReportSummary): void {
    const c = this.color;
    if (summary.skipped.length > 0) this.out.write(`Skipped ${plural(summary.skipped.length, 'command')} ${summary.skipReason}\n`);
    if (summary.failed === 0) {
      this.out.write(c.green(`All commands successfully executed ☃\n`));
    } else {
      this.out.write(c.red.bold(`${summary.failed} of ${summary.total} commands failed:\n`));
      for (const cmd of summary.failedCommands) this.out.write(c.red(`  ✗ ${cmd}\n`));
    }
    if (summary.halted !== null) {
      const notRun = summary.notRun.length;
      this.out.write(c.yellow(`Halted: ${summary.halted}; ${plural(notRun, 'command')} cancelled or not started\n`));
    }
    const ran = summary.total - summary.notRun.length;
    const hash = summary.hash === null ? 'no result hash (the run was halted)' : `result hash is ${summary.hash}`;
    this.out.write(`Ran ${plural(ran, 'command')} in ⌚${formatDuration(summary.elapsed)}, ${hash}\n`);
  }

  private writeStream(text: string, encoding: JobResult['stdoutEncoding'], truncated: number, name: string, tag: string, paint: (s: string) => string): void {
    if (text.length > 0) {
      if (encoding === 'base64') {
        // Not UTF-8: hand the bytes to the terminal as they were written.
        const bytes = decodeStream(text, encoding);
        this.out.write(tag ? tagBytes(bytes, tag) : bytes);
        if (bytes[bytes.length - 1] !== 0x0a) this.out.write('\n');
      } else {
        const body = text.endsWith('\n') ? text : `${text}\n`;
        this.out.write(paint(tag ? body.replace(/^/gm, tag).slice(0, -tag.length) : body));
      }
    }
    if (truncated > 0) this.out.write(this.color.yellow(`${tag}[… ${truncated} more bytes of ${name} truncated by the worker's --max-output]\n`));
  }
}

/** Puts `tag` before every line of raw bytes. */
function tagBytes(bytes: Buffer, tag: string): Buffer {
  const prefix = Buffer.from(tag, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline + 1;
    parts.push(prefix, bytes.subarray(start, end));
    start = end;
  }
  return Buffer.concat(parts);
}

