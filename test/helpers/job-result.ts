import type { JobResult } from '@testcloud/protocol';

/**
 * A JobResult for tests: `true` run once, exiting 0 with no output, on worker `w`; a test
 * overrides only the fields it is about, so those are the ones a reader sees.
 */
export function jobResult(overrides: Partial<JobResult> = {}): JobResult {
  return {
    id: 0,
    attempt: 1,
    cmd: 'true',
    exitcode: 0,
    signal: null,
    stdout: '',
    stderr: '',
    stdoutEncoding: 'utf8',
    stderrEncoding: 'utf8',
    stdoutTruncated: 0,
    stderrTruncated: 0,
    duration: 1,
    worker: 'w',
    error: null,
    stopped: null,
    ...overrides,
  };
}
