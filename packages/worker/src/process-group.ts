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

/**
 * The timers that decide to stop a command: a wall-clock limit, a limit on silence, and an
 * abort signal. `stopped` says which fired first.
 */
export class StopWatch {
  stopped: 'timeout' | 'idle-timeout' | 'cancelled' | null = null;
  private wall: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.stop('cancelled');

  constructor(
    private readonly options: { timeout?: number; idleTimeout?: number; signal?: AbortSignal; killGrace?: number },
    private readonly stopNow: (grace: number) => void,
  ) {
    if (options.timeout) this.wall = setTimeout(() => this.stop('timeout'), timerDelay(options.timeout));
    this.activity();
    if (options.signal?.aborted) this.stop('cancelled');
    else options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Output arrived: the silence limit starts again. */
  activity(): void {
    if (!this.options.idleTimeout || this.stopped) return;
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stop('idle-timeout'), timerDelay(this.options.idleTimeout));
  }

  dispose(): void {
    clearTimeout(this.wall);
    clearTimeout(this.idle);
    this.options.signal?.removeEventListener('abort', this.onAbort);
  }

  private stop(reason: NonNullable<StopWatch['stopped']>): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.dispose();
    this.stopNow(reason === 'cancelled' ? Math.min(this.options.killGrace ?? DEFAULT_KILL_GRACE, 500) : this.options.killGrace ?? DEFAULT_KILL_GRACE);
  }
}
