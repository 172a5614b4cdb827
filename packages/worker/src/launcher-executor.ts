import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cannotRunIn, invalidRequest, isDirectory, notStarted, outcomeOf, signalName } from './exec-outcome.js';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { Launcher } from './launcher.js';
import { launcherEnvironment, type LauncherEnvironment } from './launcher-script.js';
import { OutputCapture } from './output-capture.js';
import { DEFAULT_KILL_GRACE, StopWatch } from './process-group.js';

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

  /**
   * Starts the launchers (one per slot) now, in `cwd`, so that the first jobs do not wait for
   * bash to start and make its FIFOs. Once ready, each is idle, and unreferenced, until a job
   * takes it; until then it keeps the process up, as a job may be waiting for it.
   */
  prestart(cwd: string): void {
    if (this.closed || this.fallback || !Number.isFinite(this.maxLaunchers)) return;
    const home = resolve(cwd);
    while (this.launchers.size < this.maxLaunchers) {
      const launcher = this.newLauncher(home);
      // A launcher that cannot start is gone from the set by then; the next job tries again
      // and falls back to execa if it fails too.
      launcher.ready.then(
        () => {
          if (launcher.load === 0) launcher.letGo();
          this.wakeWaiting();
        },
        () => {},
      );
    }
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
            error = reason === 'cwd' ? cannotRunIn(cwd) : reason;
          },
          exited: (exitcode, signal) => {
            ended = { exitcode, signal: signal === null ? null : signalName(signal) };
            giveUpOnStreamsLater();
          },
          closed: () => {
            watch.dispose();
            clearTimeout(giveUp);
            this.released(launcher);
            done(outcomeOf({ ended, error, stdout, stderr, duration: performance.now() - started, stopped: watch.stopped }));
          },
        },
      );
      // acquire() hands out only an idle launcher: bash starts the job as soon as it reads it.
      request.onStart?.();
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
    const launcher = this.newLauncher(home);
    launcher.reserve();
    try {
      await launcher.ready;
    } finally {
      this.wakeWaiting();
    }
    return launcher;
  }

  private newLauncher(home: string): Launcher {
    const launcher = new Launcher(this.environment, isDirectory(home) ? home : process.cwd(), this.options.bash);
    this.launchers.add(launcher);
    void launcher.exited.then(() => {
      this.launchers.delete(launcher);
      this.wakeWaiting();
    });
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
