import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { Launcher } from './launcher.js';
import { launcherEnvironment, type LauncherEnvironment } from './launcher-script.js';
import { OutputCapture } from './output-capture.js';
import { DEFAULT_KILL_GRACE, StopWatch, stopGroup } from './process-group.js';

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/**
 * The default executor: each command still runs as `sh -c CMD` in a process group of its own,
 * with its own stdout and stderr, but it is forked by a persistent bash per slot (launcher.ts)
 * rather than spawned by Node, which costs the worker's event loop about 2 ms per job and made
 * Node the bottleneck for short commands. Same contract as ExecaExecutor; where bash cannot be
 * started it falls back to it.
 */
export class LauncherExecutor implements Executor {
  private readonly idle: Launcher[] = [];
  private readonly running = new Set<Promise<ExecOutcome>>();
  private readonly environment: LauncherEnvironment = launcherEnvironment();
  private fallback: Executor | undefined;
  private closed = false;

  /** Set when bash could not be started and commands go through execa instead. */
  fallbackReason: string | undefined;

  constructor(private readonly onFallback?: (reason: string) => void) {}

  run(request: ExecRequest): Promise<ExecOutcome> {
    const outcome = this.runOnLauncher(request);
    this.running.add(outcome);
    void outcome.finally(() => this.running.delete(outcome));
    return outcome;
  }

  /** Ends the idle launchers and waits for running jobs (the worker has aborted them). */
  async close(): Promise<void> {
    this.closed = true;
    for (const launcher of this.idle.splice(0)) launcher.retire();
    await Promise.allSettled([...this.running]);
  }

  private async runOnLauncher(request: ExecRequest): Promise<ExecOutcome> {
    const started = performance.now();
    const invalid = invalidRequest(request);
    if (invalid !== undefined) return notStarted(invalid, started);
    if (this.fallback) return this.fallback.run(request);
    let launcher: Launcher;
    try {
      launcher = await this.acquire();
    } catch (error) {
      if (this.fallbackReason === undefined) {
        this.fallbackReason = `cannot start the bash launcher (${(error as Error).message}): running commands through execa`;
        this.onFallback?.(this.fallbackReason);
      }
      return (await this.fallbackExecutor()).run(request);
    }
    return new Promise((done) => {
      const cwd = resolve(request.cwd || '.');
      const stdout = new OutputCapture(request.maxOutput);
      const stderr = new OutputCapture(request.maxOutput);
      const grace = request.killGrace ?? DEFAULT_KILL_GRACE;
      let pid: number | undefined;
      let pendingStop: number | undefined;
      let ended: { exitcode: number | null; signal: string | null } | undefined;
      let error: string | null = null;
      let giveUp: NodeJS.Timeout | undefined;
      // A stopped job whose escaped children still hold its streams is not waited for forever.
      const giveUpOnStreamsLater = () => {
        if (ended && watch.stopped && !giveUp) giveUp = setTimeout(() => launcher.abandonStreams(), grace + 250);
      };
      const watch = new StopWatch(request, (stopGrace) => {
        if (pid === undefined) pendingStop = stopGrace;
        else stopGroup(pid, stopGrace);
        giveUpOnStreamsLater();
      });
      launcher.launch(
        { cwd, cmd: request.cmd, ...(request.env !== undefined ? { env: request.env } : {}) },
        {
          started: (startedPid) => {
            pid = startedPid;
            request.onSpawn?.(startedPid);
            if (pendingStop !== undefined) stopGroup(startedPid, pendingStop);
          },
          stdout: (chunk) => {
            watch.activity();
            stdout.push(chunk);
          },
          stderr: (chunk) => {
            watch.activity();
            stderr.push(chunk);
          },
          failed: (reason) => {
            error = reason === 'cwd' ? `cannot run in ${cwd}: ${directoryProblem(cwd)}` : reason;
          },
          exited: (exitcode, signal) => {
            ended = { exitcode, signal: signal === null ? null : SIGNAL_NAMES.get(signal) ?? `SIG${signal}` };
            giveUpOnStreamsLater();
          },
          closed: () => {
            watch.dispose();
            clearTimeout(giveUp);
            this.release(launcher);
            done({
              exitcode: error === null ? ended?.exitcode ?? null : null,
              signal: error === null ? ended?.signal ?? null : null,
              stdout: stdout.bytes(),
              stderr: stderr.bytes(),
              stdoutTruncated: stdout.dropped,
              stderrTruncated: stderr.dropped,
              duration: performance.now() - started,
              error,
              stopped: watch.stopped,
            });
          },
        },
      );
    });
  }

  private async acquire(): Promise<Launcher> {
    for (let launcher = this.idle.pop(); launcher !== undefined; launcher = this.idle.pop()) {
      if (launcher.alive) {
        launcher.hold();
        return launcher;
      }
    }
    const launcher = new Launcher(this.environment);
    await launcher.ready;
    return launcher;
  }

  private release(launcher: Launcher): void {
    if (!launcher.alive) return;
    if (this.closed) launcher.retire();
    else {
      launcher.letGo();
      this.idle.push(launcher);
    }
  }

  private async fallbackExecutor(): Promise<Executor> {
    if (!this.fallback) {
      const { ExecaExecutor } = await import('./execa-executor.js');
      this.fallback ??= new ExecaExecutor();
    }
    return this.fallback;
  }
}

function invalidRequest(request: ExecRequest): string | undefined {
  if (request.cmd.includes('\0')) return 'the command contains a NUL byte';
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) return `cannot set the environment variable ${JSON.stringify(name)}`;
  }
  return undefined;
}

function notStarted(error: string, started: number): ExecOutcome {
  const empty = Buffer.alloc(0);
  return { exitcode: null, signal: null, stdout: empty, stderr: empty, stdoutTruncated: 0, stderrTruncated: 0, duration: performance.now() - started, error, stopped: null };
}

function directoryProblem(cwd: string): string {
  try {
    return statSync(cwd).isDirectory() ? 'permission denied' : 'not a directory';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message;
  }
}
