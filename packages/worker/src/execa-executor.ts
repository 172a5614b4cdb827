import { performance } from 'node:perf_hooks';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { OutputCapture } from './output-capture.js';

type Execa = typeof import('execa').execa;
let execaPromise: Promise<Execa> | undefined;

/**
 * Runs each command as `sh -c CMD` through execa, in a process group of its own so that a
 * cancel or timeout can kill the command and everything it started.
 */
export class ExecaExecutor implements Executor {
  async run({ cmd, cwd, maxOutput, signal }: ExecRequest): Promise<ExecOutcome> {
    const execa = await (execaPromise ??= import('execa').then((m) => m.execa));
    const stdout = new OutputCapture(maxOutput);
    const stderr = new OutputCapture(maxOutput);
    const started = performance.now();
    const child = execa('sh', ['-c', cmd], {
      cwd,
      reject: false,
      buffer: false,
      stdin: 'ignore',
      detached: true,
      cleanup: true,
      encoding: 'buffer',
    });
    const kill = () => killGroup(child.pid, 'SIGKILL');
    signal?.addEventListener('abort', kill, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const result = await child;
    signal?.removeEventListener('abort', kill);
    const duration = performance.now() - started;
    const failedToStart = result.exitCode === undefined && result.signal === undefined;
    return {
      exitcode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stdout: stdout.bytes(),
      stderr: stderr.bytes(),
      stdoutTruncated: stdout.dropped,
      stderrTruncated: stderr.dropped,
      duration,
      error: failedToStart ? (result.originalMessage || result.shortMessage || 'could not start') : null,
    };
  }
}

/** Signals a command's whole process group; it may already be gone, which is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already exited
  }
}
