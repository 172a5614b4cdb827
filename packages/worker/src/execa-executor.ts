import { performance } from 'node:perf_hooks';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { OutputCapture } from './output-capture.js';
import { StopWatch, stopGroup } from './process-group.js';

type Execa = typeof import('execa').execa;
let execaPromise: Promise<Execa> | undefined;

/**
 * Runs each command as `sh -c CMD` through execa, in a process group of its own so that a
 * cancel or timeout can kill the command and everything it started.
 */
export class ExecaExecutor implements Executor {
  async run(request: ExecRequest): Promise<ExecOutcome> {
    const execa = await (execaPromise ??= import('execa').then((m) => m.execa));
    const stdout = new OutputCapture(request.maxOutput);
    const stderr = new OutputCapture(request.maxOutput);
    const started = performance.now();
    const child = execa('sh', ['-c', request.cmd], {
      cwd: request.cwd,
      ...(request.env !== undefined ? { env: request.env } : {}),
      reject: false,
      buffer: false,
      stdin: 'ignore',
      detached: true,
      encoding: 'buffer',
    });
    const watch = new StopWatch(request, (grace) => stopGroup(child.pid, grace));
    if (child.pid !== undefined) {
      request.onStart?.();
      request.onSpawn?.(child.pid);
    }
    child.stdout?.on('data', (chunk: Buffer) => {
      watch.activity();
      stdout.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      watch.activity();
      stderr.push(chunk);
    });
    const result = await child;
    watch.dispose();
    const failedToStart = result.exitCode === undefined && result.signal === undefined;
    return {
      exitcode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stdout: stdout.bytes(),
      stderr: stderr.bytes(),
      stdoutTruncated: stdout.dropped,
      stderrTruncated: stderr.dropped,
      duration: performance.now() - started,
      error: failedToStart ? result.originalMessage || result.shortMessage || 'could not start' : null,
      stopped: watch.stopped,
    };
  }
}
