import type { JobResult } from '@testcloud/protocol';

/** A command failed when it did not exit 0 by itself: a non-zero exit, a signal, a timeout, a cancel. */
export function isFailure(result: JobResult): boolean {
  return result.exitcode !== 0 || result.stopped !== null;
}

/** Why a command failed, in a few words: "exit 3", "timed out", "killed by SIGKILL". */
export function describeFailure(result: JobResult): string {
  if (result.stopped === 'timeout') return 'timed out';
  if (result.stopped === 'idle-timeout') return 'timed out: no output';
  if (result.stopped === 'cancelled') return 'cancelled';
  if (result.stopped === 'lost') return result.error ?? 'lost';
  if (result.error !== null) return `could not start: ${result.error}`;
  if (result.signal !== null) return `killed by ${result.signal}`;
  return `exit ${result.exitcode}`;
}
