/** What the broker remembers about each peer and each job it has accepted. */
import type { JobEnv, LoadReport, Message, WorkerState } from '@testcloud/protocol';

export interface ClientRecord {
  readonly peer: Buffer;
  readonly key: string;
  name: string;
  /** How messages reach it: over the client socket, or in-process for an upstream broker's jobs. */
  readonly deliver: (message: Message) => void;
  /** An in-process client (the upstream link): never expires, gets no heartbeats. */
  readonly local: boolean;
  /** Jobs of this client the broker holds (queued or running), by the client's own id. */
  readonly jobs: Map<number, BrokerJob>;
  lastSeen: number;
}

export interface WorkerRecord {
  readonly peer: Buffer;
  readonly key: string;
  name: string;
  host: string;
  pid: number;
  /** Slots announced in READY (a downstream broker's heartbeats may raise them). */
  slots: number;
  /** A broker lending its pool (READY said downstream), not a single worker. */
  downstream: boolean;
  /** Jobs it takes beyond its slots, to start the moment a slot frees (READY's prefetch). */
  prefetch: number;
  /**
   * Jobs the worker will take right now, prefetch included (its heartbeats lower this when load
   * limits bite, and raise it up to slots + prefetch while its jobs are short).
   */
  offered: number;
  weight: number;
  /** The worker's own view of itself, from its last heartbeat. */
  reported: WorkerState | undefined;
  load: LoadReport | undefined;
  /** Jobs dispatched to this worker and not yet answered with a RESULT, by broker job key. */
  readonly running: Map<number, BrokerJob>;
  lastSeen: number;
}

export interface BrokerJob {
  /** The broker's own id for the job, unique for this broker's lifetime; the worker sees this. */
  readonly key: number;
  readonly client: ClientRecord;
  /** The client's id for the job. */
  readonly id: number;
  readonly cmd: string;
  readonly timeout: number;
  readonly idleTimeout: number;
  /** Higher runs first among its client's queued jobs (0 = default). */
  readonly priority: number;
  /** Carried to the worker in JOB: variables to set, and a directory under the worker's --cwd. */
  readonly env?: JobEnv;
  readonly cwd?: string;
  /** Dispatches so far; the worker echoes it so late answers of an earlier one are told apart. */
  attempt: number;
  /** Re-runs still allowed after a failure. */
  retriesLeft: number;
  /** Times a worker died, vanished or handed the job back while it ran. */
  lost: number;
  /** Workers that already failed or lost it: a retry prefers another. */
  readonly triedOn: Set<string>;
  worker: WorkerRecord | null;
  dispatchedAt: number;
  /** The worker confirmed it started this attempt (QUEUED). */
  acked: boolean;
}

export function workerState(worker: WorkerRecord): WorkerState {
  if (worker.reported === 'draining' || worker.reported === 'paused' || worker.reported === 'withheld') return worker.reported;
  if (worker.running.size === 0) return 'idle';
  return worker.running.size >= capacity(worker) ? 'saturated' : 'busy';
}

/** Slots (not prefetch) the worker offers right now: what a chained broker may lend upstream. */
export function offeredSlots(worker: WorkerRecord): number {
  return Math.min(worker.slots, worker.offered);
}

/** Jobs the broker may have running or waiting on this worker. */
export function capacity(worker: WorkerRecord): number {
  return Math.min(worker.slots + worker.prefetch, worker.offered);
}
