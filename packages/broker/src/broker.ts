import { randomBytes } from 'node:crypto';
import {
  DEFAULT_HEARTBEAT,
  DEFAULT_LIVENESS,
  DEFAULT_MAX_MESSAGE_SIZE,
  RouterChannel,
  createLogger,
  type JobRef,
  type JobResult,
  type JobSpec,
  type KeyPair,
  type LoadReport,
  type Logger,
  type Message,
  type ProtocolError,
  type SubmittedCommand,
  assertNever,
  plural,
} from '@testcloud/protocol';
import { Router } from 'zeromq';
import { checkBindAllowed } from './bind-policy.js';
import { ZapHandler, type AllowLists } from './zap-handler.js';
import { BrokerError } from './errors.js';
import { FairQueue } from './fair-queue.js';
import { capacity, workerState, type BrokerJob, type ClientRecord, type WorkerRecord } from './records.js';
import { WorkerPool } from './worker-pool.js';

export interface BrokerOptions {
  /** Where clients connect (ROUTER). `tcp://127.0.0.1:*` picks a free port. */
  clientEndpoint: string;
  /** Where workers, or downstream brokers, connect (ROUTER). */
  workerEndpoint: string;
  /** Allow binding a non-loopback address without authentication. */
  insecure?: boolean;
  /** CURVE on both sockets: the broker's key pair and who may connect to each side. */
  security?: { keyPair: KeyPair; allow: AllowLists };
  /** Most jobs one client may have queued or running; announced in OK so clients hold back. */
  maxQueued?: number;
  maxMessageSize?: number;
  /** Heartbeat interval announced to peers in OK, in ms. */
  heartbeat?: number;
  /** Missed heartbeats after which a worker or client counts as gone. */
  liveness?: number;
  /** A worker that has not answered a JOB with QUEUED within this many ms loses it. */
  ackTimeout?: number;
  /** A job whose worker died (or vanished, or handed it back) this many times is reported lost. */
  maxLost?: number;
  logger?: Logger;
}

export const DEFAULT_ACK_TIMEOUT = 5000;
export const DEFAULT_MAX_QUEUED = 100_000;
export const DEFAULT_MAX_LOST = 3;

export interface BrokerStats {
  /** Messages dropped because they did not decode, by ProtocolError code or 'unexpected'. */
  dropped: Record<string, number>;
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
 * The broker: accepts jobs from clients, queues them fairly, hands them to free worker slots
 * and relays QUEUED and RESULT back to the client that submitted them.
 */
export class Broker {
  /** This incarnation's id, sent in every OK so peers can tell a restarted broker. */
  readonly id = randomBytes(8).toString('hex');
  readonly stats: BrokerStats = { dropped: {}, dispatched: 0, completed: 0, stale: 0, requeued: 0, retried: 0, lost: 0 };
  endpoints = { client: '', worker: '' };

  private readonly log: Logger;
  private readonly clients = new Map<string, ClientRecord>();
  private readonly workers = new WorkerPool();
  private readonly queue = new FairQueue<ClientRecord, BrokerJob>((job) => job.priority);
  private nextKey = 0;
  private dispatchScheduled = false;
  private clientSocket: Router | undefined;
  private workerSocket: Router | undefined;
  private clientChannel: RouterChannel | undefined;
  private workerChannel: RouterChannel | undefined;
  private loops: Promise<void>[] = [];
  private stopping = false;
  private ticker: NodeJS.Timeout | undefined;
  private zap: ZapHandler | undefined;
  private readonly heartbeat: number;
  private readonly maxQueued: number;
  private readonly liveness: number;

  constructor(private readonly options: BrokerOptions) {
    this.log = options.logger ?? createLogger('testbroker');
    this.heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.liveness = options.liveness ?? DEFAULT_LIVENESS;
  }

  get queued(): number {
    return this.queue.size;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  async start(): Promise<{ client: string; worker: string }> {
    const insecure = this.options.insecure ?? false;
    const security = this.options.security;
    const publicBinds = [this.options.clientEndpoint, this.options.workerEndpoint].filter(
      (endpoint) => checkBindAllowed(endpoint, { insecure: insecure || security !== undefined }).public,
    );
    if (!security) {
      for (const endpoint of publicBinds) {
        this.log.warn(`WARNING: ${endpoint} is reachable beyond this machine with no authentication (--insecure)`);
      }
    }
    const maxMessageSize = this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const socketOptions = {
      linger: 0,
      maxMessageSize,
      // A reconnecting peer that keeps its routing id takes over its old connection.
      handover: true,
      // Results must never be dropped for a slow reader; clients bound what they have in flight.
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
    };
    const curve = (domain: 'clients' | 'workers') =>
      security
        ? {
            curveServer: true,
            curveSecretKey: security.keyPair.secretKey,
            curvePublicKey: security.keyPair.publicKey,
            zapDomain: domain,
            // Without a ZAP verdict nobody is let in, even if the handler were missing.
            zapEnforceDomain: true,
          }
        : {};
    if (security) {
      this.zap = new ZapHandler(security.allow, this.log);
      await this.zap.start();
    }
    this.clientSocket = new Router({ ...socketOptions, ...curve('clients') });
    this.workerSocket = new Router({ ...socketOptions, ...curve('workers') });
    this.endpoints.client = await bind(this.clientSocket, this.options.clientEndpoint);
    this.endpoints.worker = await bind(this.workerSocket, this.options.workerEndpoint);
    const channelOptions = (side: string) => ({
      maxMessageSize,
      onDropped: (error: ProtocolError) => this.drop(side, error.code, error.message),
      onSendError: (error: unknown) => this.log.limited(`send-${side}`, `cannot send to a ${side}: ${String(error)}`),
    });
    this.clientChannel = new RouterChannel(this.clientSocket, channelOptions('client'));
    this.workerChannel = new RouterChannel(this.workerSocket, channelOptions('worker'));
    this.loops = [
      this.serve(this.clientChannel, (peer, msg) => this.onClientMessage(peer, msg)),
      this.serve(this.workerChannel, (peer, msg) => this.onWorkerMessage(peer, msg)),
    ];
    this.ticker = setInterval(() => this.tick(), Math.min(this.heartbeat, this.options.ackTimeout ?? DEFAULT_ACK_TIMEOUT));
    return { ...this.endpoints };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.ticker);
    for (const worker of this.workers.values()) this.workerChannel?.send(worker.peer, { type: 'bye', reason: 'broker shutting down' });
    for (const client of this.clients.values()) if (!client.local) client.deliver({ type: 'bye', reason: 'broker shutting down' });
    await Promise.all([this.workerChannel?.drained(), this.clientChannel?.drained()]);
    this.clientSocket?.close();
    this.workerSocket?.close();
    await Promise.allSettled(this.loops);
    await this.zap?.stop();
  }

  private async serve(channel: RouterChannel, handle: (peer: Buffer, message: Message) => void): Promise<void> {
    try {
      for await (const { peer, message } of channel.messages()) handle(peer, message);
    } catch (error) {
      if (!this.stopping) this.log.warn(`receive loop failed: ${String(error)}`);
    }
  }

  private drop(side: string, code: string, detail: string): void {
    this.stats.dropped[code] = (this.stats.dropped[code] ?? 0) + 1;
    this.log.limited(`drop-${side}-${code}`, `dropped a bad message from a ${side} (${code}: ${detail}); further ones of this kind are counted, logged once a minute`);
  }

  // ---- clients ------------------------------------------------------------------------------

  private onClientMessage(peer: Buffer, message: Message): void {
    const now = Date.now();
    switch (message.type) {
      case 'hello': {
        const client = this.clientFor(peer, now);
        client.name = printable(message.client);
        this.clientChannel!.send(peer, { type: 'ok', broker: this.id, heartbeat: this.heartbeat, window: this.maxQueued });
        return;
      }
      case 'submit': {
        const client = this.clientFor(peer, now);
        const refused = this.accept(client, message.jobs);
        if (refused.length > 0) {
          // A well-behaved client keeps within the window we announced in OK; this one did not.
          client.deliver({
            type: 'error',
            code: 'TESTCLOUD_QUEUE_FULL',
            message: `a client may have at most ${this.maxQueued} commands queued or running (--max-queued)`,
            ids: refused,
          });
        }
        this.scheduleDispatch();
        return;
      }
      case 'heartbeat':
        // A client we do not know (we restarted, or expired it) must greet us again.
        if (!this.clients.has(peer.toString('hex'))) this.clientChannel!.send(peer, { type: 'bye', reason: 'unknown client: say HELLO' });
        else this.clients.get(peer.toString('hex'))!.lastSeen = now;
        return;
      case 'bye': {
        const client = this.clients.get(peer.toString('hex'));
        if (client) this.removeClient(client, `said goodbye: ${printable(message.reason)}`);
        return;
      }
      case 'ready':
      case 'queued':
      case 'result':
      case 'ok':
      case 'job':
      case 'error':
      case 'requeue':
      case 'cancel':
        this.drop('client', 'TESTCLOUD_UNEXPECTED_MESSAGE', `${message.type.toUpperCase()} is not a client message`);
        return;
      default:
        return assertNever(message);
    }
  }

  /** Takes a client's commands into the queue; returns the ids refused for --max-queued. */
  accept(client: ClientRecord, jobs: SubmittedCommand[]): number[] {
    const refused: number[] = [];
    for (const { id, cmd, timeout = 0, idleTimeout = 0, retries = 0, priority = 0, env, cwd } of jobs) {
      if (client.jobs.has(id)) continue; // resubmitted while we still hold it
      if (client.jobs.size >= this.maxQueued) {
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

  private clientFor(peer: Buffer, now: number): ClientRecord {
    const key = peer.toString('hex');
    let client = this.clients.get(key);
    if (!client) {
      client = { peer, key, name: key, jobs: new Map(), lastSeen: now, local: false, deliver: (message) => this.clientChannel!.send(peer, message) };
      this.clients.set(key, client);
    }
    client.lastSeen = now;
    return client;
  }

  /**
   * An in-process client whose messages go to `deliver`: an upstream broker's jobs enter the
   * queue through it and take their turn with the clients of this broker.
   */
  attachLocalClient(name: string, deliver: (message: Message) => void): ClientRecord {
    const key = `local-${name}-${this.nextKey++}`;
    const client: ClientRecord = { peer: Buffer.from(key), key, name, jobs: new Map(), lastSeen: Date.now(), local: true, deliver };
    this.clients.set(key, client);
    return client;
  }

  /** Stops some of a client's jobs: dropped if queued, cancelled on their worker if running. */
  cancel(client: ClientRecord, ids: number[]): void {
    const cancels = new Map<WorkerRecord, JobRef[]>();
    for (const id of ids) {
      const job = client.jobs.get(id);
      if (!job) continue;
      client.jobs.delete(id); // a queued job is skipped when its turn comes
      if (!job.worker) continue;
      let list = cancels.get(job.worker);
      if (!list) cancels.set(job.worker, (list = []));
      list.push({ id: job.key, attempt: job.attempt });
    }
    for (const [worker, jobs] of cancels) this.workerChannel!.send(worker.peer, { type: 'cancel', jobs });
  }

  /** Slots the broker's workers offer right now, for an upstream broker to see as ours. */
  capacity(): number {
    let total = 0;
    for (const worker of this.workers.values()) total += capacity(worker);
    return total;
  }

  /** Forgets a client: its queued jobs are dropped and its running ones cancelled on their workers. */
  removeClient(client: ClientRecord, reason: string): void {
    this.clients.delete(client.key);
    const dropped = this.queue.remove(client).length;
    const cancels = new Map<WorkerRecord, JobRef[]>();
    for (const job of client.jobs.values()) {
      if (!job.worker) continue;
      let list = cancels.get(job.worker);
      if (!list) cancels.set(job.worker, (list = []));
      list.push({ id: job.key, attempt: job.attempt });
    }
    // The cancelled jobs keep their slots until the worker's RESULT says they are gone.
    client.jobs.clear();
    for (const [worker, jobs] of cancels) this.workerChannel!.send(worker.peer, { type: 'cancel', jobs });
    const running = [...cancels.values()].reduce((n, list) => n + list.length, 0);
    if (dropped + running > 0) this.log.info(`client ${client.name} ${reason}: dropped ${plural(dropped, 'queued job')}, cancelled ${plural(running, 'running job')}`);
  }

  // ---- workers ------------------------------------------------------------------------------

  private onWorkerMessage(peer: Buffer, message: Message): void {
    const key = peer.toString('hex');
    const worker = this.workers.get(key);
    if (!worker && message.type !== 'ready' && message.type !== 'bye') {
      // Expired, or we restarted: it must say READY before anything it sends counts.
      this.workerChannel!.send(peer, { type: 'bye', reason: 'unknown worker: say READY' });
      return;
    }
    if (worker) worker.lastSeen = Date.now();
    switch (message.type) {
      case 'ready':
        this.onReady(peer, key, worker, message);
        return;
      case 'queued':
        this.onQueued(worker!, message.jobs);
        return;
      case 'result':
        this.onResults(worker!, message.results);
        return;
      case 'heartbeat':
        this.onHeartbeat(worker!, message);
        return;
      case 'bye':
        if (worker) this.removeWorker(worker, printable(message.reason) || 'said goodbye');
        return;
      case 'requeue':
        this.onRequeue(worker!, message.jobs, printable(message.reason));
        return;
      case 'hello':
      case 'submit':
      case 'ok':
      case 'job':
      case 'error':
      case 'cancel':
        this.drop('worker', 'TESTCLOUD_UNEXPECTED_MESSAGE', `${message.type.toUpperCase()} is not a worker message`);
        return;
      default:
        return assertNever(message);
    }
  }

  private onReady(peer: Buffer, key: string, known: WorkerRecord | undefined, ready: Extract<Message, { type: 'ready' }>): void {
    // READY opens a session in which the worker holds nothing: whatever we thought it ran is
    // requeued (it killed those jobs before greeting us).
    if (known) this.requeueAll(known, 'reconnected');
    const slots = Math.min(ready.slots, MAX_SLOTS);
    const worker: WorkerRecord = known ?? {
      peer,
      key,
      name: printable(ready.worker),
      host: printable(ready.host),
      pid: ready.pid,
      slots,
      offered: slots,
      downstream: ready.downstream === true,
      weight: ready.weight,
      reported: undefined,
      load: undefined,
      running: new Map(),
      lastSeen: Date.now(),
    };
    Object.assign(worker, { name: printable(ready.worker), host: printable(ready.host), pid: ready.pid, slots, offered: slots, downstream: ready.downstream === true, weight: ready.weight > 0 ? ready.weight : 1 });
    if (!known) {
      this.workers.add(worker);
      this.log.info(`worker ${worker.name} joined with ${plural(worker.slots, 'slot')} (${plural(this.workers.size, 'worker')}, ${plural(this.workers.totalSlots(), 'slot')} in all)`);
    }
    this.workerChannel!.send(peer, { type: 'ok', broker: this.id, heartbeat: this.heartbeat });
    this.scheduleDispatch();
  }

  private removeWorker(worker: WorkerRecord, reason: string): void {
    this.workers.delete(worker);
    const requeued = this.requeueAll(worker, reason);
    this.log.info(`worker ${worker.name} left: ${reason}${requeued ? `; requeued ${plural(requeued, 'job')}` : ''} (${plural(this.workers.size, 'worker')} left)`);
  }

  private onHeartbeat(worker: WorkerRecord, beat: Extract<Message, { type: 'heartbeat' }>): void {
    const before = workerState(worker);
    if (beat.offered !== undefined) {
      // A downstream broker's slots grow and shrink with its own pool; a worker's never exceed READY's.
      if (worker.downstream && beat.offered > worker.slots) worker.slots = Math.min(beat.offered, MAX_SLOTS);
      worker.offered = Math.min(beat.offered, worker.slots);
    }
    if (beat.state !== undefined) worker.reported = beat.state;
    if (beat.load !== undefined) worker.load = beat.load;
    const after = workerState(worker);
    if (after !== before && (after === 'withheld' || after === 'paused' || after === 'draining' || before === 'withheld' || before === 'paused' || before === 'draining')) {
      const load = worker.load ? `; load ${worker.load.load}, cpu ${worker.load.cpu}%, ${worker.load.freeMem} MiB free` : '';
      this.log.info(`worker ${worker.name} is ${after} (offers ${worker.offered} of ${plural(worker.slots, 'slot')}${load})`);
    }
    this.scheduleDispatch();
  }

  /** Takes every job off a worker that lost them; returns how many went back in the queue. */
  private requeueAll(worker: WorkerRecord, reason: string): number {
    let requeued = 0;
    for (const job of worker.running.values()) if (this.lose(job, reason)) requeued++;
    worker.running.clear();
    this.scheduleDispatch();
    return requeued;
  }

  /**
   * A job's worker died, vanished, lagged or handed it back. It goes back to the front of its
   * client's queue, unless it has now lost --max-lost workers: then it is reported as lost, so a
   * command that kills its worker cannot go round forever. Returns whether it was requeued.
   */
  private lose(job: BrokerJob, reason: string): boolean {
    const worker = job.worker;
    job.worker = null;
    if (job.client.jobs.get(job.id) !== job) return false; // its client has gone
    job.lost++;
    if (worker) job.triedOn.add(worker.name);
    const maxLost = this.options.maxLost ?? DEFAULT_MAX_LOST;
    if (job.lost >= maxLost) {
      this.stats.lost++;
      job.client.jobs.delete(job.id);
      job.client.deliver({
        type: 'result',
        results: [lostResult(job, `lost: ${plural(job.lost, 'worker')} died or vanished while running it (last: ${reason}; --max-lost ${maxLost})`)],
      });
      return false;
    }
    this.stats.requeued++;
    this.queue.unshift(job.client, job);
    return true;
  }

  /** A worker hands jobs back (it could not run them, or killed them for its host's sake). */
  private onRequeue(worker: WorkerRecord, refs: JobRef[], reason: string): void {
    let requeued = 0;
    let unstarted = false;
    for (const ref of refs) {
      const job = worker.running.get(ref.id);
      if (!job || job.attempt !== ref.attempt) continue;
      worker.running.delete(ref.id);
      if (!job.acked) {
        unstarted = true;
        // Handed back unstarted (it arrived after the worker withdrew its slots): not a loss.
        job.worker = null;
        if (job.client.jobs.get(job.id) !== job) continue;
        this.stats.requeued++;
        this.queue.unshift(job.client, job);
        requeued++;
        continue;
      }
      if (this.lose(job, `handed back by ${worker.name}: ${reason}`)) requeued++;
    }
    // It had no room for what we sent: believe it has none until its next heartbeat says
    // otherwise, or the job would bounce between us as fast as loopback allows.
    if (unstarted) worker.offered = Math.min(worker.offered, worker.running.size);
    if (requeued > 0) this.log.limited(`handback-${worker.key}`, `worker ${worker.name} handed back ${plural(requeued, 'job')}: ${reason}`, 1000);
    this.scheduleDispatch();
  }

  private onQueued(worker: WorkerRecord, refs: JobRef[]): void {
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

  private onResults(worker: WorkerRecord, results: JobResult[]): void {
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

  // ---- scheduling ---------------------------------------------------------------------------

  /** Dispatch once per turn of the event loop, so jobs that arrive together leave together. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.stopping) return;
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
      this.workerChannel!.send(worker.peer, { type: 'job', jobs });
    }
  }

  /**
   * Once a heartbeat: tell every peer we are alive (with our incarnation id), expire the silent
   * ones, and take jobs back from workers that never confirmed them.
   */
  private tick(): void {
    const now = Date.now();
    const window = this.heartbeat * this.liveness;
    const beat = { type: 'heartbeat', broker: this.id } as const;
    for (const worker of [...this.workers.values()]) {
      if (now - worker.lastSeen > window) {
        this.removeWorker(worker, `expired: no heartbeat for ${((now - worker.lastSeen) / 1000).toFixed(1)}s`);
        continue;
      }
      this.workerChannel!.send(worker.peer, beat);
      this.reclaimUnacked(worker, now);
    }
    for (const client of [...this.clients.values()]) {
      if (client.local) continue;
      if (now - client.lastSeen > window) this.removeClient(client, `expired: no heartbeat for ${((now - client.lastSeen) / 1000).toFixed(1)}s`);
      else this.clientChannel!.send(client.peer, beat);
    }
  }

  /** Jobs a worker did not answer with QUEUED in time go elsewhere; the worker is told to drop them. */
  private reclaimUnacked(worker: WorkerRecord, now: number): void {
    const ackTimeout = this.options.ackTimeout ?? DEFAULT_ACK_TIMEOUT;
    const cancelled: JobRef[] = [];
    for (const job of worker.running.values()) {
      if (job.acked || now - job.dispatchedAt <= ackTimeout) continue;
      worker.running.delete(job.key);
      cancelled.push({ id: job.key, attempt: job.attempt });
      this.lose(job, `${worker.name} did not confirm it within ${ackTimeout} ms`);
    }
    if (cancelled.length > 0) {
      this.log.info(`worker ${worker.name} did not confirm ${plural(cancelled.length, 'job')} within ${ackTimeout} ms: sent elsewhere`);
      this.workerChannel!.send(worker.peer, { type: 'cancel', jobs: cancelled });
      this.scheduleDispatch();
    }
  }

  /** SIGHUP: new allow-lists for the next handshakes; connected peers stay connected. */
  reloadAllowLists(allow: AllowLists): void {
    this.zap?.reload(allow);
  }

  /** A snapshot of each worker's state, for logs and a later status view. */
  workerStates(): Array<{ name: string; state: string; running: number; slots: number; offered: number; weight: number; load: LoadReport | undefined }> {
    return [...this.workers.values()].map((w) => ({
      name: w.name,
      state: workerState(w),
      running: w.running.size,
      slots: w.slots,
      offered: w.offered,
      weight: w.weight,
      load: w.load,
    }));
  }
}

/** A READY may claim any number of slots; past this it is a mistake or an attack. */
const MAX_SLOTS = 4096;

/** Failures worth a retry: the command ran and failed, or timed out; not a cancel. */
function isRetriable(result: JobResult): boolean {
  if (result.stopped === 'cancelled') return false;
  return result.exitcode !== 0 || result.stopped !== null;
}

function lostResult(job: BrokerJob, error: string): JobResult {
  return {
    id: job.id,
    attempt: job.attempt,
    cmd: job.cmd,
    exitcode: null,
    signal: null,
    stdout: '',
    stderr: '',
    stdoutEncoding: 'utf8',
    stderrEncoding: 'utf8',
    stdoutTruncated: 0,
    stderrTruncated: 0,
    duration: 0,
    worker: '',
    error,
    stopped: 'lost',
  };
}

async function bind(socket: Router, endpoint: string): Promise<string> {
  try {
    await socket.bind(endpoint);
  } catch (cause) {
    const reason = (cause as { code?: string }).code === 'EADDRINUSE' ? 'the address is already in use (is another testbroker running?)' : (cause as Error).message;
    throw new BrokerError('TESTCLOUD_BIND_FAILED', `cannot listen on ${endpoint}: ${reason}`, { cause });
  }
  return socket.lastEndpoint ?? endpoint;
}

/**
 * A peer-chosen string (a name, a reason) made safe for one log line: control characters and
 * line separators escaped, so no peer can forge or split log lines, and at most 200 characters.
 */
function printable(text: string): string {
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > 200 ? `${safe.slice(0, 200)}…` : safe;
}


