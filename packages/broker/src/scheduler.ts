import { plural, type JobRef, type JobResult, type JobSpec, type Logger, type Message, type SubmittedCommand } from '@testcloud/protocol';
import { FairQueue } from './fair-queue.js';
import { isRetriable, lostResult } from './job-results.js';
import { offeredSlots, type BrokerJob, type ClientRecord, type WorkerRecord } from './records.js';
import { WorkerPool } from './worker-pool.js';

export const DEFAULT_ACK_TIMEOUT = 5000;
export const DEFAULT_MAX_QUEUED = 100_000;
export const DEFAULT_MAX_LOST = 3;

export interface SchedulerOptions {
  maxQueued: number;
  ackTimeout: number;
  maxLost: number;
  log: Logger;
  /** Sends to a worker over the worker socket. */
  toWorker(worker: WorkerRecord, message: Message): void;
}

export interface JobStats {
  dispatched: number;
  completed: number;
  /** Results dropped because their job was already answered or reassigned. */
  stale: number;
  /** Jobs put back in the queue because their worker died, vanished, lagged or handed them back. */
  requeued: number;
  retried: number;
  lost: number;
}

/**
 * The life of every job between a client and a worker: queued fairly, dispatched to the freest
 * worker once per turn of the event loop, confirmed (QUEUED) or reclaimed, answered once (late
 * answers of an earlier attempt are stale), retried, requeued when its worker is lost, and
 * reported as lost after --max-lost. Peers and sockets are the Broker's business.
 */
export class Scheduler {
  readonly workers = new WorkerPool();
  readonly stats: JobStats = { dispatched: 0, completed: 0, stale: 0, requeued: 0, retried: 0, lost: 0 };
  private readonly queue = new FairQueue<ClientRecord, BrokerJob>((job) => job.priority);
  private nextKey = 0;
  private dispatchScheduled = false;
  stopped = false;

  constructor(private readonly options: SchedulerOptions) {}

  get queued(): number {
    return this.queue.size;
  }

  /** Takes a client's commands into the queue; returns the ids refused for --max-queued. */
  accept(client: ClientRecord, jobs: SubmittedCommand[]): number[] {
    const refused: number[] = [];
    for (const { id, cmd, timeout = 0, idleTimeout = 0, retries = 0, priority = 0, env, cwd } of jobs) {
      if (client.jobs.has(id)) continue; // resubmitted while we still hold it
      if (client.jobs.size >= this.options.maxQueued) {
        refused.push(id);
        continue;
      }
      const job: BrokerJob = {
        key: this.nextKey++,
        client,
        id,
        cmd,
        timeout,
        idleTimeout,
        priority,
        ...(env !== undefined ? { env } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
        attempt: 0,
        retriesLeft: retries,
        lost: 0,
        triedOn: new Set(),
        worker: null,
        dispatchedAt: 0,
        acked: false,
      };
      client.jobs.set(id, job);
      this.queue.push(client, job);
    }
    this.scheduleDispatch();
    return refused;
  }

  /** Stops some of a client's jobs: dropped if queued, cancelled on their worker if running. */
  cancel(client: ClientRecord, ids: number[]): void {
    const jobs: BrokerJob[] = [];
    for (const id of ids) {
      const job = client.jobs.get(id);
      if (!job) continue;
      client.jobs.delete(id); // a queued job is skipped when its turn comes
      jobs.push(job);
    }
    this.cancelRunning(jobs);
  }

  /** A client has gone: its queued jobs are dropped, its running ones cancelled. Returns the counts. */
  dropClient(client: ClientRecord): { dropped: number; cancelled: number } {
    const dropped = this.queue.remove(client).length;
    // The cancelled jobs keep their slots until the worker's RESULT says they are gone.
    const cancelled = this.cancelRunning([...client.jobs.values()]);
    client.jobs.clear();
    return { dropped, cancelled };
  }

  /**
   * Slots the workers offer right now, without their prefetch: a chained broker lends these
   * upstream, and its upstream must not take prefetch room for slots.
   */
  capacity(): number {
    let total = 0;
    for (const worker of this.workers.values()) total += offeredSlots(worker);
    return total;
  }

  /** Takes every job off a worker that lost them; returns how many went back in the queue. */
  requeueAll(worker: WorkerRecord, reason: string): number {
    let requeued = 0;
    for (const job of worker.running.values()) if (this.lose(job, reason)) requeued++;
    worker.running.clear();
    this.scheduleDispatch();
    return requeued;
  }

  /** A worker hands jobs back (it could not run them, or killed them for its host's sake). */
  handedBack(worker: WorkerRecord, refs: JobRef[], reason: string): void {
    let requeued = 0;
    let unstarted = false;
    for (const ref of refs) {
      const job = worker.running.get(ref.id);
      if (!job || job.attempt !== ref.attempt) continue;
      worker.running.delete(ref.id);
      if (!job.acked) {
        // Handed back unstarted (it arrived after the worker withdrew its slots): not a loss.
        unstarted = true;
        if (this.requeue(job)) requeued++;
        continue;
      }
      if (this.lose(job, `handed back by ${worker.name}: ${reason}`)) requeued++;
    }
    // It had no room for what we sent: believe it has none until its next heartbeat says
    // otherwise, or the job would bounce between us as fast as loopback allows.
    if (unstarted) worker.offered = Math.min(worker.offered, worker.running.size);
    if (requeued > 0) this.options.log.limited(`handback-${worker.key}`, `worker ${worker.name} handed back ${plural(requeued, 'job')}: ${reason}`, 1000);
    this.scheduleDispatch();
  }

  /** A worker confirms it started jobs: they can no longer be reclaimed; clients hear which worker took them. */
  confirmed(worker: WorkerRecord, refs: JobRef[]): void {
    const byClient = new Map<ClientRecord, JobRef[]>();
    for (const ref of refs) {
      const job = worker.running.get(ref.id);
      if (!job || job.attempt !== ref.attempt) continue;
      job.acked = true;
      if (job.client.jobs.get(job.id) !== job) continue;
      let list = byClient.get(job.client);
      if (!list) byClient.set(job.client, (list = []));
      list.push({ id: job.id, attempt: job.attempt, worker: worker.name });
    }
    for (const [client, jobs] of byClient) client.deliver({ type: 'queued', jobs });
  }

  /** Results from a worker: each attempt is answered once; failures may be retried elsewhere. */
  finished(worker: WorkerRecord, results: JobResult[]): void {
    const byClient = new Map<ClientRecord, JobResult[]>();
    for (const result of results) {
      const job = worker.running.get(result.id);
      if (!job || job.attempt !== result.attempt) {
        this.stats.stale++;
        continue;
      }
      worker.running.delete(result.id);
      job.worker = null;
      this.stats.completed++;
      if (job.client.jobs.get(job.id) !== job) continue; // the client has gone
      if (job.retriesLeft > 0 && isRetriable(result)) {
        job.retriesLeft--;
        job.triedOn.add(worker.name);
        this.stats.retried++;
        this.queue.unshift(job.client, job);
        continue;
      }
      job.client.jobs.delete(job.id);
      let list = byClient.get(job.client);
      if (!list) byClient.set(job.client, (list = []));
      list.push({ ...result, id: job.id });
    }
    for (const [client, list] of byClient) client.deliver({ type: 'result', results: list });
    this.scheduleDispatch();
  }

  /**
   * Jobs a worker has not started (QUEUED) in time go elsewhere; the worker is told to drop them.
   * Not a loss: a job waiting in a worker's prefetch behind long ones has not run either. But
   * only once the worker has spoken since the deadline: one that has gone silent may have died
   * of the job in the moment before it would have confirmed it, and is left to expire, which
   * counts the loss (else a command that kills its worker at once would go round for ever).
   */
  reclaimUnacked(worker: WorkerRecord, now: number): void {
    const { ackTimeout } = this.options;
    const cancelled: JobRef[] = [];
    for (const job of worker.running.values()) {
      if (job.acked || now - job.dispatchedAt <= ackTimeout) continue;
      if (worker.lastSeen <= job.dispatchedAt + ackTimeout) continue;
      worker.running.delete(job.key);
      cancelled.push({ id: job.key, attempt: job.attempt });
      job.triedOn.add(worker.name);
      this.requeue(job);
    }
    if (cancelled.length > 0) {
      this.options.log.info(`worker ${worker.name} did not confirm ${plural(cancelled.length, 'job')} within ${ackTimeout} ms: sent elsewhere`);
      this.options.toWorker(worker, { type: 'cancel', jobs: cancelled });
      this.scheduleDispatch();
    }
  }

  /** Dispatch once per turn of the event loop, so jobs that arrive together leave together. */
  scheduleDispatch(): void {
    if (this.dispatchScheduled || this.stopped) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    const batches = new Map<WorkerRecord, JobSpec[]>();
    const now = Date.now();
    while (this.queue.size > 0) {
      let worker = this.workers.pickFree();
      if (!worker) break;
      const job = this.queue.take()!;
      if (job.client.jobs.get(job.id) !== job) continue; // cancelled while it waited
      if (job.triedOn.has(worker.name)) worker = this.workers.pickFree(job.triedOn)!;
      job.attempt++;
      job.worker = worker;
      job.dispatchedAt = now;
      job.acked = false;
      worker.running.set(job.key, job);
      let batch = batches.get(worker);
      if (!batch) batches.set(worker, (batch = []));
      batch.push({
        id: job.key,
        cmd: job.cmd,
        attempt: job.attempt,
        timeout: job.timeout,
        idleTimeout: job.idleTimeout,
        ...(job.env !== undefined ? { env: job.env } : {}),
        ...(job.cwd !== undefined ? { cwd: job.cwd } : {}),
      });
    }
    for (const [worker, jobs] of batches) {
      this.stats.dispatched += jobs.length;
      this.options.toWorker(worker, { type: 'job', jobs });
    }
  }

  /**
   * A job's worker died, vanished, lagged or handed it back. It goes back to the front of its
   * client's queue, unless it has now lost --max-lost workers: then it is reported as lost, so a
   * command that kills its worker cannot go round forever. Returns whether it was requeued.
   */
  private lose(job: BrokerJob, reason: string): boolean {
    if (job.client.jobs.get(job.id) !== job) {
      job.worker = null;
      return false; // its client has gone
    }
    job.lost++;
    if (job.worker) job.triedOn.add(job.worker.name);
    const { maxLost } = this.options;
    if (job.lost >= maxLost) {
      job.worker = null;
      this.stats.lost++;
      job.client.jobs.delete(job.id);
      job.client.deliver({
        type: 'result',
        results: [lostResult(job, `lost: ${plural(job.lost, 'worker')} died or vanished while running it (last: ${reason}; --max-lost ${maxLost})`)],
      });
      return false;
    }
    return this.requeue(job);
  }

  /** Back to the front of its client's queue, if its client still wants it. */
  private requeue(job: BrokerJob): boolean {
    job.worker = null;
    if (job.client.jobs.get(job.id) !== job) return false;
    this.stats.requeued++;
    this.queue.unshift(job.client, job);
    return true;
  }

  /** Sends CANCEL for those of `jobs` that are running, grouped by worker; returns how many. */
  private cancelRunning(jobs: Iterable<BrokerJob>): number {
    const byWorker = new Map<WorkerRecord, JobRef[]>();
    let count = 0;
    for (const job of jobs) {
      if (!job.worker) continue;
      let list = byWorker.get(job.worker);
      if (!list) byWorker.set(job.worker, (list = []));
      list.push({ id: job.key, attempt: job.attempt });
      count++;
    }
    for (const [worker, refs] of byWorker) this.options.toWorker(worker, { type: 'cancel', jobs: refs });
    return count;
  }
}
