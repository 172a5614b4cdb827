import type { ChalkInstance } from 'chalk';
import prettyMs from 'pretty-ms';
import { decodeStream, type JobResult } from '@testcloud/protocol';
import type { RunObserver, RunSummary } from './run.js';
import { isFailure } from './run.js';

export interface Output {
  write(chunk: string | Buffer): unknown;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? prettyMs(ms, { millisecondsDecimalDigits: 2 }) : prettyMs(ms, { secondsDecimalDigits: 2 });
}

/** The original testcloud's output: a line per result, its output, then a summary and the hash. */
export class HumanReporter implements RunObserver {
  constructor(
    private readonly out: Output,
    private readonly color: ChalkInstance,
    /** Where warnings go, so they never mix with results on stdout. */
    private readonly err: Output = out,
  ) {}

  connected(endpoint: string): void {
    this.out.write(`Connecting to ${endpoint}\n`);
  }

  counted(total: number): void {
    this.out.write(`Releasing the hounds: ${total} command${total === 1 ? '' : 's'} to execute\n`);
  }

  warning(message: string): void {
    this.err.write(this.color.yellow(`testclient: ${message}\n`));
  }

  result(result: JobResult): void {
    const c = this.color;
    const attempts = result.attempt > 1 ? ` after ${result.attempt} attempts` : '';
    const time = `⌚${formatDuration(result.duration)}${attempts}`;
    const failed = isFailure(result);
    const head = failed ? c.red.bold(`FAIL! ${result.cmd} ${time} ${describeFailure(result)}`) : `${c.green.bold('OK!')} ${result.cmd} ${c.dim(time)}`;
    this.out.write(`${head}\n`);
    this.writeStream(result.stdout, result.stdoutEncoding, result.stdoutTruncated, 'stdout', (s) => s);
    if (failed) this.writeStream(result.stderr, result.stderrEncoding, result.stderrTruncated, 'stderr', (s) => c.red(s));
    this.out.write('\n');
  }

  summary(summary: RunSummary): void {
    const c = this.color;
    if (summary.failed === 0) {
      this.out.write(c.green(`All commands successfully executed ☃\n`));
    } else {
      this.out.write(c.red.bold(`${summary.failed} of ${summary.total} commands failed:\n`));
      for (const cmd of summary.failedCommands) this.out.write(c.red(`  ✗ ${cmd}\n`));
    }
    this.out.write(`Ran ${summary.total} command${summary.total === 1 ? '' : 's'} in ⌚${formatDuration(summary.elapsed)}, result hash is ${summary.hash}\n`);
  }

  private writeStream(text: string, encoding: JobResult['stdoutEncoding'], truncated: number, name: string, paint: (s: string) => string): void {
    if (text.length > 0) {
      if (encoding === 'base64') {
        // Not UTF-8: hand the bytes to the terminal as they were written.
        const bytes = decodeStream(text, encoding);
        this.out.write(bytes);
        if (bytes[bytes.length - 1] !== 0x0a) this.out.write('\n');
      } else {
        this.out.write(paint(text.endsWith('\n') ? text : `${text}\n`));
      }
    }
    if (truncated > 0) this.out.write(this.color.yellow(`[… ${truncated} more bytes of ${name} truncated by the worker's --max-output]\n`));
  }
}

function describeFailure(result: JobResult): string {
  if (result.stopped === 'timeout') return '(timed out)';
  if (result.stopped === 'idle-timeout') return '(timed out: no output)';
  if (result.stopped === 'cancelled') return '(cancelled)';
  if (result.stopped === 'lost') return `(${result.error ?? 'lost'})`;
  if (result.error !== null) return `(could not start: ${result.error})`;
  if (result.signal !== null) return `(killed by ${result.signal})`;
  return `(exit ${result.exitcode})`;
}
