import { accessSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { cannotRunIn, invalidRequest, isDirectory, notStarted, outcomeOf, signalName } from './exec-outcome.js';
import type { ExecOutcome, ExecRequest, Executor } from './executor.js';
import { OutputCapture } from './output-capture.js';
import { DEFAULT_KILL_GRACE, StopWatch } from './process-group.js';
import { SlotGate } from './slot-gate.js';
import { Spawner, prestartSpawner } from './spawner.js';

const { SIGTERM, SIGCONT, SIGKILL } = constants.signals;

/**
 * A job still running this many ms after its start was read has its pid reported (onSpawn: the
 * memory guard, the group reaper); a shorter one never does. Most jobs of a busy worker are
 * shorter, and reporting each cost the worker more than starting it. The spawner kills every
 * group itself if the worker dies, so the reaper misses nothing.
 */
const REPORT_PID_AFTER = 4;

export interface SpawnerExecutorOptions {
  /**
   * Jobs run at once (the worker's slots; default: no limit). More may be given to run(): they
   * wait in the spawner and each starts the instant a job ends, with no round trip through Node.
   */
  slots?: number;
  /** Told once for each fallback: Python cannot be used (bash then), and bash neither (execa). */
  onFallback?(reason: string): void;
  /** The Python to run (default: the system's /usr/bin/python3 if there is one, else python3 on PATH). */
  python?: string;
  /** The bash of the fallback launcher (default: bash on PATH). */
  bash?: string;
}

/**
 * The `fast` executor: each command runs as `sh -c CMD` in a process group of its own, with its
 * own stdout and stderr, started by one persistent Python process (spawner.ts) with
 * posix_spawn, which costs less per job than Node's spawn or a bash fork. Same contract as
 * ExecaExecutor. Where Python cannot be started (missing, older than 3.8) it runs commands
 * through the bash launcher, which itself falls back to execa.
 */
export class SpawnerExecutor implements Executor {
  readonly queues = true;

  /** Python kills every job's group when the worker's end of its pipe hangs up; the fallbacks do not. */
  get killsOrphans(): boolean {
    return this.fallback === undefined;
  }
  private spawner: Spawner | undefined;
  private readonly running = new Set<Promise<ExecOutcome>>();
  /** The jobs' base environment, as execa's is: the worker's, as it was at the start. */
  private readonly environment: NodeJS.ProcessEnv = { ...process.env };
  private fallback: { executor: Promise<Executor>; gate: SlotGate | undefined } | undefined;

  /** Set when Python could not be started and commands go through the bash launcher instead. */
  fallbackReason: string | undefined;

  constructor(private readonly options: SpawnerExecutorOptions = {}) {}

  /** Starts Python now, so that the first job need not wait for it; it is idle (and unreferenced) until then. */
  prestart(cwd: string): void {
    if (!this.fallback) this.spawnerFor(resolve(cwd));
  }

  run(request: ExecRequest): Promise<ExecOutcome> {
    const outcome = this.runOnSpawner(request);
    this.running.add(outcome);
    void outcome.finally(() => this.running.delete(outcome));
    return outcome;
  }

  /** Waits for running jobs (the worker has aborted them), then ends the spawner. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running]);
    const spawner = this.spawner;
    this.spawner = undefined;
    spawner?.retire();
    await spawner?.exited;
    if (this.fallback) await (await this.fallback.executor).close?.();
  }

  /** `rerun`: the job was lost by a spawner that died before starting it, and is given one more. */
  private async runOnSpawner(request: ExecRequest, rerun = false): Promise<ExecOutcome> {
    const invalid = invalidRequest(request);
    if (invalid !== undefined) return notStarted(invalid, null);
    if (this.fallback) return this.runOnFallback(request);
    const cwd = resolve(request.cwd || '.');
    const spawner = this.spawnerFor(cwd);
    try {
      await spawner.whenReady();
    } catch (error) {
      this.fallBack(error as Error);
      return this.runOnFallback(request);
    }
    if (request.signal?.aborted) return notStarted(null, 'cancelled');
    return this.execute(spawner, request, cwd, rerun);
  }

  /** The running spawner, or a new one (after one that died) in `home`, where jobs need no chdir. */
  private spawnerFor(home: string): Spawner {
    if (this.spawner?.alive) return this.spawner;
    const spawner = new Spawner(isDirectory(home) ? home : process.cwd(), this.environment, this.options.slots ?? Number.POSITIVE_INFINITY, this.options.python ?? defaultPython());
    spawner.ready.catch((error: Error) => this.fallBack(error));
    this.spawner = spawner;
    return spawner;
  }

  /** Python could not be started: from now on every job goes through the bash launcher. */
  private fallBack(error: Error): void {
    if (this.fallbackReason !== undefined) return;
    this.fallbackReason = `cannot start the Python spawner (${error.message}): running commands through the bash launcher`;
    this.fallback = {
      executor: import('./launcher-executor.js').then(({ LauncherExecutor }) => new LauncherExecutor(this.options)),
      gate: this.options.slots === undefined ? undefined : new SlotGate(this.options.slots),
    };
    this.options.onFallback?.(this.fallbackReason);
  }

  private execute(spawner: Spawner, request: ExecRequest, cwd: string, rerun: boolean): Promise<ExecOutcome> {
    return new Promise((done) => {
      const stdout = new OutputCapture(request.maxOutput);
      const stderr = new OutputCapture(request.maxOutput);
      const grace = request.killGrace ?? DEFAULT_KILL_GRACE;
      let watch: StopWatch | undefined;
      let cancelledEarly = false;
      let ended: { exitcode: number | null; signal: string | null } | undefined;
      let error: string | null = null;
      let killLater: NodeJS.Timeout | undefined;
      let reportPid: NodeJS.Timeout | undefined;
      let giveUp: NodeJS.Timeout | undefined;
      // A stopped job whose escaped children still hold its streams is not waited for forever.
      const giveUpOnStreamsLater = () => {
        if (ended && (watch?.stopped || cancelledEarly) && !giveUp) giveUp = setTimeout(() => job.abandonStreams(), grace + 250);
      };
      const stop = (stopGrace: number) => {
        job.signal(SIGTERM);
        // A group paused by the memory guard keeps SIGTERM pending until it runs again.
        job.signal(SIGCONT);
        killLater ??= setTimeout(() => job.signal(SIGKILL), stopGrace).unref();
        giveUpOnStreamsLater();
      };
      // Cancelled before its start was read: still queued, the spawner drops it; just started,
      // it is stopped (and stopped again once its start is read).
      const cancelEarly = () => {
        cancelledEarly = true;
        stop(Math.min(grace, 500));
      };
      request.signal?.addEventListener('abort', cancelEarly, { once: true });
      const streamOf = (stream: 1 | 2) => (stream === 1 ? stdout : stderr);
      const job = spawner.run(
        { cmd: request.cmd, cwd, maxOutput: request.maxOutput, ...(request.env !== undefined ? { env: request.env } : {}) },
        {
          begun: () => request.onStart?.(),
          started: (pid) => {
            request.signal?.removeEventListener('abort', cancelEarly);
            const { onSpawn } = request;
            if (pid !== undefined && onSpawn) reportPid = setTimeout(() => onSpawn(pid), REPORT_PID_AFTER);
            // Timeouts count from the actual start, not from the time spent queued.
            watch = new StopWatch(request, stop);
          },
          output: (stream, chunk) => {
            watch?.activity();
            streamOf(stream).push(chunk);
          },
          dropped: (stream, count) => {
            watch?.activity();
            streamOf(stream).dropped += count;
          },
          failed: (reason) => {
            error = reason === 'cwd' ? cannotRunIn(cwd) : reason;
          },
          exited: (exitcode, signal) => {
            ended = { exitcode, signal: signal === null ? null : signalName(signal) };
            giveUpOnStreamsLater();
          },
          over: (runtime) => {
            request.signal?.removeEventListener('abort', cancelEarly);
            watch?.dispose();
            clearTimeout(killLater);
            clearTimeout(giveUp);
            clearTimeout(reportPid);
            if (runtime === undefined && error === null) return done(notStarted(null, 'cancelled'));
            done(outcomeOf({ ended, error, stdout, stderr, duration: runtime ?? 0, stopped: watch?.stopped ?? (cancelledEarly ? 'cancelled' : null) }));
          },
          lost: (reason) => {
            request.signal?.removeEventListener('abort', cancelEarly);
            clearTimeout(killLater);
            // Python died with the job still queued: nothing of it ran. It goes to a new spawner
            // (spawnerFor starts one), once; a job lost twice fails as a started one would.
            if (cancelledEarly) done(notStarted(null, 'cancelled'));
            else if (rerun) done(notStarted(reason, null));
            else done(this.runOnSpawner(request, true));
          },
        },
      );
    });
  }

  /** Through the bash launcher (or execa), `slots` at a time as the spawner would run them. */
  private async runOnFallback(request: ExecRequest): Promise<ExecOutcome> {
    const { executor, gate } = this.fallback!;
    if (gate && !(await gate.enter(request.signal))) return notStarted(null, 'cancelled');
    try {
      return await (await executor).run(request);
    } finally {
      gate?.leave();
    }
  }
}

/** Starts the Python that the next SpawnerExecutor (default python) will use; see prestartSpawner. */
export function prestartDefaultSpawner(): void {
  prestartSpawner(defaultPython());
}

/**
 * Any Python from 3.8 on runs the spawner the same way, and a version manager's shim on PATH
 * (pyenv's is a bash script that picks a version) costs ~60 ms a start: the system's own
 * interpreter goes first.
 */
function defaultPython(): string {
  return isExecutable(SYSTEM_PYTHON) ? SYSTEM_PYTHON : 'python3';
}

const SYSTEM_PYTHON = '/usr/bin/python3';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}
