import type { ExecOutcome, ExecRequest, Executor } from './executor.js';

const EMPTY = Buffer.alloc(0);

/**
 * For benchmarks only (`--executor noop`): every command "succeeds" at once without running,
 * so what is measured is the broker, the wire and the worker's bookkeeping.
 */
export class NoopExecutor implements Executor {
  run(request: ExecRequest): Promise<ExecOutcome> {
    if (request.signal?.aborted) return Promise.resolve(outcome(null, 'cancelled'));
    return Promise.resolve(outcome(0, null));
  }
}

function outcome(exitcode: number | null, stopped: ExecOutcome['stopped']): ExecOutcome {
  return { exitcode, signal: null, stdout: EMPTY, stderr: EMPTY, stdoutTruncated: 0, stderrTruncated: 0, duration: 0, error: null, stopped };
}
