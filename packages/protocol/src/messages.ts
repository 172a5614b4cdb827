/**
 * Every message testcloud puts on the wire, as one discriminated union. The codec in codec.ts
 * is the only place that turns these into frames and back.
 *
 * Ids: a client numbers its commands 0, 1, 2… in input order (`id` in SUBMIT, and in the QUEUED
 * and RESULT it gets back). The broker gives each job its own id for the worker side, so jobs
 * of different clients never collide; `attempt` counts dispatches of the same job from 1.
 */

/** How a byte stream is carried in JSON: as text when it is valid UTF-8, else as base64. */
export type StreamEncoding = 'utf8' | 'base64';

export interface JobSpec {
  id: number;
  cmd: string;
  attempt: number;
  /** Wall-clock limit in ms (0 = none): the worker kills the process group when it passes. */
  timeout: number;
  /** Limit in ms on silence (no stdout or stderr) (0 = none). */
  idleTimeout: number;
  /** Variables set for this command on top of the worker's environment (absent = none). */
  env?: JobEnv;
  /**
   * Directory to run in, relative to the worker's --cwd (absent = the worker's --cwd). The
   * worker refuses an absolute path or one that leads outside its --cwd.
   */
  cwd?: string;
}

/** Environment variables carried with a job: names without "=" or NUL, values without NUL. */
export type JobEnv = Record<string, string>;

/** Why a command was stopped by the worker rather than ending by itself. */
export type Stopped = 'timeout' | 'idle-timeout' | 'cancelled' | 'lost' | null;

export interface SubmittedCommand {
  id: number;
  cmd: string;
  /** Per-job limits in ms; 0 or absent means none. */
  timeout?: number;
  idleTimeout?: number;
  /** Times the broker re-runs the command after it fails (non-zero exit or timeout). */
  retries?: number;
  /**
   * Among this client's queued commands, higher runs first; equal priorities keep submission
   * order; absent means 0. Retried and requeued commands go before others of their priority.
   */
  priority?: number;
  /** Carried into the JOB unchanged: see JobSpec. */
  env?: JobEnv;
  cwd?: string;
}

export interface JobRef {
  id: number;
  attempt: number;
  /** Set by the broker when it relays QUEUED to a client: which worker took the job. */
  worker?: string;
}

export interface JobResult {
  id: number;
  attempt: number;
  cmd: string;
  /** Exit status, or null when the process was killed by a signal or never started. */
  exitcode: number | null;
  /** Name of the signal that killed the process (`SIGKILL`), or null. */
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutEncoding: StreamEncoding;
  stderrEncoding: StreamEncoding;
  /** Bytes dropped from each stream past the worker's --max-output cap (0 when none). */
  stdoutTruncated: number;
  stderrTruncated: number;
  /** Wall time of the command in milliseconds. */
  duration: number;
  /** Identity of the worker that ran it (`host:pid`, or the --name it was given). */
  worker: string;
  /** Why the command could not be run at all (spawn failure), or null. */
  error: string | null;
  /** Set when the worker killed the command (a timeout, or a cancel). */
  stopped: Stopped;
  /** Time the command spent paused (SIGSTOP) by the worker's memory guard, in ms. */
  paused?: number;
}

/** A worker's own view of itself, reported in heartbeats (for scheduling and status views). */
export type WorkerState = 'idle' | 'busy' | 'saturated' | 'paused' | 'withheld' | 'draining';

/** Host readings a worker reports, so the broker can prefer the machine with most room. */
export interface LoadReport {
  /** 1-minute load average divided by the number of CPUs. */
  load: number;
  /** Percent of CPU time busy over the last few seconds. */
  cpu: number;
  /** MemAvailable in MiB. */
  freeMem: number;
}

export type Message =
  // worker -> broker
  // (downstream: the sender is a broker lending its pool; its heartbeats may raise its slots)
  // (prefetch: jobs the worker takes beyond its slots and starts the moment a slot frees; its
  // heartbeats' `offered` may then go up to slots + prefetch)
  | { type: 'ready'; worker: string; host: string; pid: number; slots: number; weight: number; downstream?: boolean; prefetch?: number }
  | { type: 'queued'; jobs: JobRef[] }
  | { type: 'result'; results: JobResult[] }
  // broker -> worker, broker -> client
  // (window, to clients: the most commands the broker holds for one client at a time)
  | { type: 'ok'; broker: string; heartbeat: number; window?: number }
  | { type: 'job'; jobs: JobSpec[] }
  // client -> broker
  | { type: 'hello'; client: string }
  | { type: 'submit'; jobs: SubmittedCommand[] }
  // broker -> client
  | { type: 'error'; code: string; message: string; ids: number[] }
  // worker -> broker: jobs handed back unrun or killed for the host's sake, to run elsewhere
  | { type: 'requeue'; jobs: JobRef[]; reason: string }
  // broker -> worker: stop these jobs (their client has gone)
  | { type: 'cancel'; jobs: JobRef[] }
  // any peer -> any peer: liveness (any message counts), and the peer that leaves says so.
  // The broker puts its incarnation id in its heartbeats; a worker adds its state, the slots it
  // offers right now (fewer than READY's when load limits withhold some) and its host readings.
  | { type: 'heartbeat'; broker?: string; state?: WorkerState; offered?: number; load?: LoadReport }
  | { type: 'bye'; reason: string };

export type MessageType = Message['type'];
export type MessageOfType<T extends MessageType> = Extract<Message, { type: T }>;
