/** What the broker remembers about each peer and each job it has accepted. */

export interface ClientRecord {
  readonly peer: Buffer;
  readonly key: string;
  name: string;
  /** Jobs of this client the broker holds (queued or running), by the client's own id. */
  readonly jobs: Map<number, BrokerJob>;
  lastSeen: number;
}

export type WorkerState = 'idle' | 'busy' | 'saturated';

export interface WorkerRecord {
  readonly peer: Buffer;
  readonly key: string;
  name: string;
  host: string;
  pid: number;
  slots: number;
  weight: number;
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
  attempt: number;
  worker: WorkerRecord | null;
}

export function workerState(worker: WorkerRecord): WorkerState {
  if (worker.running.size === 0) return 'idle';
  return worker.running.size >= worker.slots ? 'saturated' : 'busy';
}
