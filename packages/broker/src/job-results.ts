import type { JobResult } from '@testcloud/protocol';
import type { BrokerJob } from './records.js';

/** Failures worth a retry: the command ran and failed, or timed out; not a cancel. */
export function isRetriable(result: JobResult): boolean {
  if (result.stopped === 'cancelled') return false;
  return result.exitcode !== 0 || result.stopped !== null;
}

/**
 * A result the broker side makes up for a job that did not run to its end here: it has no
 * output, no exit status, and says why in `error` and `stopped`.
 */
export function syntheticResult(
  job: Pick<JobResult, 'id' | 'attempt' | 'cmd'>,
  why: Pick<JobResult, 'error' | 'stopped' | 'worker'>,
): JobResult {
  return {
    id: job.id,
    attempt: job.attempt,
    cmd: job.cmd,
    exitcode: null,
    signal: null,
    stdout: '',
    stderr: '',
    stdoutEncoding: 'utf8',
    stderrEncoding: 'utf8',
    stdoutTruncated: 0,
    stderrTruncated: 0,
    duration: 0,
    // In the order a worker's results have (and the codec's parser gives), so that --json
    // prints every result's fields alike, whether it crossed a socket or not (mem://).
    worker: why.worker,
    error: why.error,
    stopped: why.stopped,
  };
}

/** The result the broker reports itself for a job that lost too many workers (--max-lost). */
export function lostResult(job: BrokerJob, error: string): JobResult {
  return syntheticResult(job, { error, stopped: 'lost', worker: '' });
}
