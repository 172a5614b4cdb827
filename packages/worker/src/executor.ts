import type { Stopped } from '@testcloud/protocol';

/** What a worker needs from whatever runs its commands: one call per job. */
export interface ExecRequest {
  cmd: string;
  cwd: string;
  /** Variables to set on top of the worker's own environment (absent = none). */
  env?: Record<string, string>;
  /** Bytes kept per stream; the rest is counted and dropped. */
  maxOutput: number;
  /** Aborting kills the command's whole process group; the outcome says `stopped: 'cancelled'`. */
  signal?: CancelSignal;
  /** Wall-clock limit in ms (0 or absent = none); time paused (`pauses`) does not count. */
  timeout?: number;
  /** Limit in ms on time without any output (0 or absent = none); it starts again on resume. */
  idleTimeout?: number;
  /**
   * Says when the worker's memory guard stops the command's process group (SIGSTOP) and lets it
   * run again (SIGCONT): the timeouts do not count the time it could not run.
   */
  pauses?: PauseSignal;
  /** Time between SIGTERM and SIGKILL to the process group when stopping a command, in ms. */
  killGrace?: number;
  /**
   * Called once the command's process has started, with its pid, which is also its process
   * group id: the worker's memory guard pauses, resumes and kills the job through it.
   */
  onSpawn?(pid: number): void;
  /**
   * Called once, the moment the job actually starts (leaves any queue); not for a job that
   * never starts (cancelled while queued, refused). It comes before the outcome.
   */
  onStart?(): void;
}

/**
 * How a job is cancelled: the part of an AbortSignal that executors use, which the worker's
 * cheaper Cancel (cancel.ts) also has. Listeners are added with { once: true } and take no event.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Whether a job is paused now, and each change; the job's executor reads it as it reads `signal`. */
export interface PauseSignal {
  readonly paused: boolean;
  /** Calls `listener` on every change, until the function it returns is called. */
  subscribe(listener: (paused: boolean) => void): () => void;
}

export interface ExecOutcome {
  exitcode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: number;
  stderrTruncated: number;
  /** Wall time in milliseconds. */
  duration: number;
  /** Why the command could not start, or null. */
  error: string | null;
  /** Set when the executor killed the command rather than it ending by itself. */
  stopped: Stopped;
}

export interface Executor {
  /**
   * run() may be given more jobs than the worker has slots: the extras wait inside the executor
   * and each starts the moment a slot frees, with no round trip through the worker (see the
   * worker's prefetch). Timeouts and `duration` count from the actual start (and timeouts
   * stop counting while `pauses` says the job is paused).
   */
  readonly queues?: boolean;
  /**
   * It kills its jobs' process groups itself should the worker die (however it dies), so the
   * worker's group reaper need not know them.
   */
  readonly killsOrphans?: boolean;
  run(request: ExecRequest): Promise<ExecOutcome>;
  /**
   * Gets ready for jobs that run in `cwd` before the first one comes (starts helper processes
   * while the rest of the program starts up). Holds nothing open: without jobs, the process
   * still exits as it would have.
   */
  prestart?(cwd: string): void;
  close?(): Promise<void>;
}
