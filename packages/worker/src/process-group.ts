import { performance } from 'node:perf_hooks';
import type { CancelSignal, PauseSignal } from './executor.js';

/** Signals a command's whole process group; it may already be gone, which is fine. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group has already exited
  }
}

/**
 * Stops a process group politely: SIGTERM now, SIGKILL after `grace` ms to whatever is left
 * (children that ignore SIGTERM, or outlive the shell that started them).
 */
export function stopGroup(pid: number | undefined, grace: number): void {
  killGroup(pid, 'SIGTERM');
  // A group paused by the memory guard keeps SIGTERM pending until it runs again.
  killGroup(pid, 'SIGCONT');
  setTimeout(() => killGroup(pid, 'SIGKILL'), grace).unref();
}

/** Freezes a command's whole process group (SIGSTOP: it cannot be caught or ignored). */
export function pauseGroup(pid: number): void {
  killGroup(pid, 'SIGSTOP');
}

/** Lets a paused process group run again. */
export function resumeGroup(pid: number): void {
  killGroup(pid, 'SIGCONT');
}

/**
 * The command line that runs `cmd` at niceness `increment` above the worker's own: `nice`
 * is exec'd in place of the shell, so the process group leader (and every process the
 * command starts) has the lower priority from its first instruction, with no race.
 */
export function niceCommand(cmd: string, increment: number): string {
  return `exec nice -n ${increment} sh -c '${cmd.replace(/'/g, `'\\''`)}'`;
}

export const DEFAULT_KILL_GRACE = 2000;

/**
 * Node fires a timer of more than 2^31-1 ms (24.8 days) after 1 ms instead: a --timeout of 600h
 * would kill every command at once. Longer limits wait the longest a timer can.
 */
function timerDelay(ms: number): number {
  return Math.min(ms, 2 ** 31 - 1);
}

/** The guard's side of a job's PauseSignal: it says when it stops and resumes the job's group. */
export class PauseController implements PauseSignal {
  private state = false;
  private readonly listeners = new Set<(paused: boolean) => void>();

  get paused(): boolean {
    return this.state;
  }

  subscribe(listener: (paused: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Call right after SIGSTOP to the group. */
  pause(): void {
    this.set(true);
  }

  /** Call right after SIGCONT to the group. */
  resume(): void {
    this.set(false);
  }

  private set(paused: boolean): void {
    if (paused === this.state) return;
    this.state = paused;
    for (const listener of [...this.listeners]) listener(paused);
  }
}

/**
 * The timers that decide to stop a command: a wall-clock limit, a limit on silence, and an
 * abort signal. `stopped` says which fired first.
 *
 * Neither limit counts time the command spends paused by the memory guard (`pauses`, or
 * pause() and resume()): the wall-clock limit goes on after a pause with the running time it
 * had left, and the silence limit starts its whole wait again, since a stopped command could
 * not write. An abort stops a paused command at once.
 */
export class StopWatch {
  stopped: 'timeout' | 'idle-timeout' | 'cancelled' | null = null;
  private wall: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** Running time the wall-clock limit had left when its timer was last set (undefined: no limit). */
  private wallLeft: number | undefined;
  /** When the wall-clock timer was last set, by `now`. */
  private wallSetAt = 0;
  private paused = false;
  private disposed = false;
  private unsubscribe: (() => void) | undefined;
  private readonly onAbort = () => this.stop('cancelled');

  constructor(
    private readonly options: { timeout?: number; idleTimeout?: number; signal?: CancelSignal; pauses?: PauseSignal; killGrace?: number },
    private readonly stopNow: (grace: number) => void,
    /** A monotonic clock in ms (tests inject their own). */
    private readonly now: () => number = () => performance.now(),
  ) {
    if (options.timeout) {
      this.wallLeft = options.timeout;
      this.setWall();
    }
    this.activity();
    if (options.signal?.aborted) {
      this.stop('cancelled');
      return;
    }
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.unsubscribe = options.pauses?.subscribe((paused) => (paused ? this.pause() : this.resume()));
    if (options.pauses?.paused) this.pause();
  }

  /** Output arrived: the silence limit starts again. */
  activity(): void {
    // Output a paused command wrote before it stopped may still be read: resume() restarts the wait.
    if (!this.options.idleTimeout || this.stopped || this.paused || this.disposed) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop('idle-timeout'), timerDelay(this.options.idleTimeout));
  }

  /** The command's process group is stopped: neither limit counts the time until resume(). */
  pause(): void {
    if (this.paused || this.stopped || this.disposed) return;
    this.paused = true;
    clearTimeout(this.idle);
    if (this.wallLeft !== undefined) {
      clearTimeout(this.wall);
      this.wallLeft = Math.max(0, this.wallLeft - (this.now() - this.wallSetAt));
    }
  }

  /** The command runs again: the wall-clock limit goes on with what it had left, the silence limit starts afresh. */
  resume(): void {
    if (!this.paused || this.stopped || this.disposed) return;
    this.paused = false;
    if (this.wallLeft !== undefined) this.setWall();
    this.activity();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.wall);
    clearTimeout(this.idle);
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.unsubscribe?.();
  }

  private setWall(): void {
    this.wallSetAt = this.now();
    this.wall = setTimeout(() => this.stop('timeout'), timerDelay(this.wallLeft!));
  }

  private stop(reason: NonNullable<StopWatch['stopped']>): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.dispose();
    this.stopNow(reason === 'cancelled' ? Math.min(this.options.killGrace ?? DEFAULT_KILL_GRACE, 500) : this.options.killGrace ?? DEFAULT_KILL_GRACE);
  }
}
