import type { JobResult } from '@testcloud/protocol';
import { isFailure } from './outcome.js';

/**
 * When to stop a run before every command has finished, like GNU parallel's
 * `--halt now,fail=N`: after the Nth failure the rest is cancelled (`--fail-fast` is N = 1).
 */
export class HaltPolicy {
  private failures = 0;

  constructor(
    readonly maxFailures: number,
    /** The flag that set it, for the summary: "--fail-fast" or "--max-failures 3". */
    readonly flag = maxFailures === 1 ? '--fail-fast' : `--max-failures ${maxFailures}`,
  ) {}

  /** Called with each result; returns the reason to stop now, or undefined to go on. */
  afterResult(result: JobResult): string | undefined {
    if (!isFailure(result)) return undefined;
    this.failures++;
    if (this.failures < this.maxFailures) return undefined;
    return `stopped after ${this.failures} failure${this.failures === 1 ? '' : 's'} (${this.flag})`;
  }
}
