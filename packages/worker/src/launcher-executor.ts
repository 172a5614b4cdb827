import { statSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { Launcher } from './launcher.js';
import { launcherEnvironment, type LauncherEnvironment } from './launcher-script.js';
import { OutputCapture } from './output-capture.js';
import { DEFAULT_KILL_GRACE, StopWatch } from './process-group.js';

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export interface LauncherExecutorOptions {
  /**
   * At most this many launchers (the worker's slots): a job that arrives while all are busy
   * waits for one to be free, which lets a worker take a job or two more than it runs at once
   * and start each the moment a slot frees, without a round trip to the broker. Without it, one
   * launcher per job running at once.
   */
  slots?: number;
  /** Told once if bash cannot be started and commands go through execa instead. */
  onFallback?(reason: string): void;
  /** The bash to run (default: bash on PATH). */
  bash?: string;
}

/**
 * The default executor: each command still runs as `sh -c CMD` in a process group of its own,
 * with its own stdout and stderr, but it is forked by a persistent bash per slot (launcher.ts)
 * rather than spawned by Node, which costs the worker's event loop about 2 ms per job and made
 * Node the bottleneck for short commands. Same contract as ExecaExecutor; where bash cannot be
 * started it falls back to it.
 */
export class LauncherExecutor implements Executor {
  private readonly launchers = new Set<Launcher>();
  private readonly waiting: Array<() => void> = [];
  private readonly running = new Set<Promise<ExecOutcome>>();
  private readonly environment: LauncherEnvironment = launcherEnvironment();
  private readonly maxLaunchers: number;
  private fallback: Executor | undefined;
  private closed = false;

  /** Set when bash could not be started and commands go through execa instead. */
  fallbackReason: string | undefined;

  constructor(private readonly options: LauncherExecutorOptions = {}) {
    this.maxLaunchers = options.slots ?? Number.POSITIVE_INFINITY;
  }

  run(request: ExecRequest): Promise<ExecOutcome> {
    const outcome = this.runOnLauncher(request);
    this.running.add(outcome);
    void outcome.finally(() => this.running.delete(outcome));
    return outcome;
  }

  /** Waits for running jobs (the worker has aborted them), then ends every launcher. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
    for (const launcher of this.launchers) {
      launcher.hold(); // an idle launcher is unref'd: keep the process up until it has exited
      launcher.retire();
    }
    await Promise.all([...this.launchers].map((launcher) => launcher.exited));
  }

  private async runOnLauncher(request: ExecRequest): Promise<ExecOutcome> {
    const invalid = invalidRequest(request);
    if (invalid !== undefined) return notStarted(invalid, null);
    if (this.fallback) return this.fallback.run(request);
    const cwd = resolve(request.cwd || '.');
    let launcher: Launcher;
    try {
      launcher = await this.acquire(cwd);
    } catch (error) {
      if (this.fallbackReason === undefined) {
        this.fallbackReason = `cannot start the bash launcher (${(error as Error).message}): running commands through execa`;
        this.options.onFallback?.(this.fallbackReason);
      }
      return (await this.fallbackExecutor()).run(request);
    }
    if (request.signal?.aborted) {
      // Cancelled while it waited for a launcher: it never starts.
      launcher.unreserve();
      this.released(launcher);
      return notStarted(null, 'cancelled');
    }
    const started = performance.now();
    return new Promise((done) => {
      const stdout = new OutputCapture(request.maxOutput);
      const stderr = new OutputCapture(request.maxOutput);
      const grace = request.killGrace ?? DEFAULT_KILL_GRACE;
      let ended: { exitcode: number | null; signal: string | null } | undefined;
      let error: string | null = null;
      let giveUp: NodeJS.Timeout | undefined;
      // A stopped job whose escaped children still hold its streams is not waited for forever.
      const giveUpOnStreamsLater = () => {
        if (ended && watch.stopped && !giveUp) giveUp = setTimeout(() => job.abandonStreams(), grace + 250);
      };
      const job = launcher.launch(
        { cwd, cmd: request.cmd, stream: Boolean(request.idleTimeout), ...(request.env !== undefined ? { env: request.env } : {}) },
        {
          started: (pid) => request.onSpawn?.(pid),
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
            this.released(launcher);
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
      // Created after launch: an already aborted signal stops the job at once.
      const watch = new StopWatch(request, (stopGrace) => {
        job.stop(stopGrace);
        giveUpOnStreamsLater();
      });
    });
  }

  /**
   * An idle launcher if there is one; else a new one while under `slots`; else wait for one to
   * finish its job. (A launcher could take the next job in its queue and start it the moment
   * the current one ends, but a job queued behind a long one would then wait while another
   * launcher sits idle; waiting here costs a few tens of microseconds instead.)
   */
  private async acquire(home: string): Promise<Launcher> {
    for (;;) {
      for (const launcher of this.launchers) {
        if (launcher.hasRoom && launcher.load === 0) {
          launcher.hold();
          launcher.reserve();
          return launcher;
        }
      }
      if (this.launchers.size < this.maxLaunchers) return this.startLauncher(home);
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private async startLauncher(home: string): Promise<Launcher> {
    const launcher = new Launcher(this.environment, isDirectory(home) ? home : process.cwd(), this.options.bash);
    this.launchers.add(launcher);
    void launcher.exited.then(() => {
      this.launchers.delete(launcher);
      this.wakeWaiting();
    });
    launcher.reserve();
    try {
      await launcher.ready;
    } finally {
      this.wakeWaiting();
    }
    return launcher;
  }

  private released(launcher: Launcher): void {
    if (this.closed) launcher.retire();
    else if (launcher.load === 0) launcher.letGo();
    this.wakeWaiting();
  }

  private wakeWaiting(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
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

function notStarted(error: string | null, stopped: ExecOutcome['stopped']): ExecOutcome {
  const empty = Buffer.alloc(0);
  return { exitcode: null, signal: null, stdout: empty, stderr: empty, stdoutTruncated: 0, stderrTruncated: 0, duration: 0, error, stopped };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function directoryProblem(cwd: string): string {
  try {
    return statSync(cwd).isDirectory() ? 'permission denied' : 'not a directory';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message;
  }
}
