import { randomBytes } from 'node:crypto';
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  RouterChannel,
  createLogger,
  type JobRef,
  type JobResult,
  type JobSpec,
  type Logger,
  type Message,
  type ProtocolError,
} from '@testcloud/protocol';
import { Router } from 'zeromq';
import { checkBindAllowed } from './bind-policy.js';
import { BrokerError } from './errors.js';
import { FairQueue } from './fair-queue.js';
import { workerState, type BrokerJob, type ClientRecord, type WorkerRecord } from './records.js';
import { WorkerPool } from './worker-pool.js';

export interface BrokerOptions {
  /** Where clients connect (ROUTER). `tcp://127.0.0.1:*` picks a free port. */
  clientEndpoint: string;
  /** Where workers, or downstream brokers, connect (ROUTER). */
  workerEndpoint: string;
  /** Allow binding a non-loopback address without authentication. */
  insecure?: boolean;
  maxMessageSize?: number;
  /** Interval announced to peers in OK, in ms. */
  heartbeat?: number;
  logger?: Logger;
}

export interface BrokerStats {
  /** Messages dropped because they did not decode, by ProtocolError code or 'unexpected'. */
  dropped: Record<string, number>;
  dispatched: number;
  completed: number;
  /** Results dropped because their job was already answered or reassigned. */
  stale: number;
}

/**
 * The broker: accepts jobs from clients, queues them fairly, hands them to free worker slots
 * and relays QUEUED and RESULT back to the client that submitted them.
 */
export class Broker {
  /** This incarnation's id, sent in every OK so peers can tell a restarted broker. */
  readonly id = randomBytes(8).toString('hex');
  readonly stats: BrokerStats = { dropped: {}, dispatched: 0, completed: 0, stale: 0 };
  endpoints = { client: '', worker: '' };

  private readonly log: Logger;
  private readonly clients = new Map<string, ClientRecord>();
  private readonly workers = new WorkerPool();
  private readonly queue = new FairQueue<ClientRecord, BrokerJob>();
  private nextKey = 0;
  private dispatchScheduled = false;
  private clientSocket: Router | undefined;
  private workerSocket: Router | undefined;
  private clientChannel: RouterChannel | undefined;
  private workerChannel: RouterChannel | undefined;
  private loops: Promise<void>[] = [];
  private stopping = false;

  constructor(private readonly options: BrokerOptions) {
    this.log = options.logger ?? createLogger('testbroker');
  }

  get queued(): number {
    return this.queue.size;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  async start(): Promise<{ client: string; worker: string }> {
    const insecure = this.options.insecure ?? false;
    const publicBinds = [this.options.clientEndpoint, this.options.workerEndpoint].filter(
      (endpoint) => checkBindAllowed(endpoint, { insecure }).public,
    );
    for (const endpoint of publicBinds) {
      this.log.warn(`WARNING: ${endpoint} is reachable beyond this machine with no authentication (--insecure)`);
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
    this.clientSocket = new Router(socketOptions);
    this.workerSocket = new Router(socketOptions);
    this.endpoints.client = await bind(this.clientSocket, this.options.clientEndpoint);
    this.endpoints.worker = await bind(this.workerSocket, this.options.workerEndpoint);
    const channelOptions = (side: string) => ({
      maxMessageSize,
      onDropped: (error: ProtocolError) => this.drop(side, error.code, error.message),
      onSendError: (error: unknown) => this.log.limited(`send-${side}`, `cannot send to a ${side}: ${String(error)}`),
    });
    this.clientChannel = new RouterChannel(this.clientSocket, channelOptions('client'));
    this.workerChannel = new RouterChannel(this.workerSocket, channelOptions('worker'));
    this.loops = [this.serve(this.clientChannel, (peer, msg) => this.onClientMessage(peer, msg)), this.serve(this.workerChannel, (peer, msg) => this.onWorkerMessage(peer, msg))];
    return { ...this.endpoints };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const worker of this.workers.values()) this.workerChannel?.send(worker.peer, { type: 'bye', reason: 'broker shutting down' });
    for (const client of this.clients.values()) this.clientChannel?.send(client.peer, { type: 'bye', reason: 'broker shutting down' });
    await Promise.all([this.workerChannel?.drained(), this.clientChannel?.drained()]);
    this.clientSocket?.close();
    this.workerSocket?.close();
    await Promise.allSettled(this.loops);
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
        client.name = message.client;
        this.clientChannel!.send(peer, { type: 'ok', broker: this.id, heartbeat: this.options.heartbeat ?? 1000 });
        return;
      }
      case 'submit': {
        const client = this.clientFor(peer, now);
        for (const { id, cmd, timeout = 0, idleTimeout = 0 } of message.jobs) {
          if (client.jobs.has(id)) continue; // resubmitted while we still hold it
          const job: BrokerJob = { key: this.nextKey++, client, id, cmd, timeout, idleTimeout, attempt: 0, worker: null };
          client.jobs.set(id, job);
          this.queue.push(client, job);
        }
        this.scheduleDispatch();
        return;
      }
      case 'heartbeat': {
        const client = this.clients.get(peer.toString('hex'));
        if (client) client.lastSeen = now;
        this.clientChannel!.send(peer, { type: 'heartbeat' });
        return;
      }
      case 'bye': {
        const client = this.clients.get(peer.toString('hex'));
        if (client) this.removeClient(client);
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

  private clientFor(peer: Buffer, now: number): ClientRecord {
    const key = peer.toString('hex');
    let client = this.clients.get(key);
    if (!client) {
      client = { peer, key, name: key, jobs: new Map(), lastSeen: now };
      this.clients.set(key, client);
    }
    client.lastSeen = now;
    return client;
  }

  private removeClient(client: ClientRecord): void {
    this.clients.delete(client.key);
    this.queue.remove(client);
    // Running jobs finish on their workers; their results find no client and are dropped.
    client.jobs.clear();
  }

  // ---- workers ------------------------------------------------------------------------------

  private onWorkerMessage(peer: Buffer, message: Message): void {
    const key = peer.toString('hex');
    const worker = this.workers.get(key);
    if (worker) worker.lastSeen = Date.now();
    switch (message.type) {
      case 'ready':
        this.onReady(peer, key, worker, message);
        return;
      case 'queued':
        if (worker) this.onQueued(worker, message.jobs);
        return;
      case 'result':
        if (worker) this.onResults(worker, message.results);
        return;
      case 'heartbeat':
        if (worker) this.workerChannel!.send(peer, { type: 'heartbeat' });
        return;
      case 'bye':
        if (worker) this.removeWorker(worker, message.reason || 'said goodbye');
        return;
      case 'requeue':
        if (worker) this.onRequeue(worker, message.jobs, message.reason);
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
    const worker: WorkerRecord = known ?? {
      peer,
      key,
      name: ready.worker,
      host: ready.host,
      pid: ready.pid,
      slots: ready.slots,
      weight: ready.weight,
      running: new Map(),
      lastSeen: Date.now(),
    };
    Object.assign(worker, { name: ready.worker, host: ready.host, pid: ready.pid, slots: ready.slots, weight: ready.weight });
    if (!known) {
      this.workers.add(worker);
      this.log.info(`worker ${worker.name} joined with ${plural(worker.slots, 'slot')} (${plural(this.workers.size, 'worker')}, ${plural(this.workers.totalSlots(), 'slot')} in all)`);
    }
    this.workerChannel!.send(peer, { type: 'ok', broker: this.id, heartbeat: this.options.heartbeat ?? 1000 });
    this.scheduleDispatch();
  }

  private removeWorker(worker: WorkerRecord, reason: string): void {
    this.workers.delete(worker);
    let requeued = 0;
    for (const job of worker.running.values()) {
      job.worker = null;
      if (this.clients.get(job.client.key) === job.client && job.client.jobs.get(job.id) === job) {
        this.queue.unshift(job.client, job);
        requeued++;
      }
    }
    worker.running.clear();
    this.log.info(`worker ${worker.name} left: ${reason}${requeued ? `; requeued ${plural(requeued, 'job')}` : ''} (${plural(this.workers.size, 'worker')} left)`);
    this.scheduleDispatch();
  }

  /** A worker hands jobs back (it could not run them, or killed them for its host's sake). */
  private onRequeue(worker: WorkerRecord, refs: JobRef[], reason: string): void {
    let requeued = 0;
    for (const ref of refs) {
      const job = worker.running.get(ref.id);
      if (!job || job.attempt !== ref.attempt) continue;
      worker.running.delete(ref.id);
      job.worker = null;
      if (job.client.jobs.get(job.id) === job) {
        this.queue.unshift(job.client, job);
        requeued++;
      }
    }
    if (requeued > 0) this.log.info(`worker ${worker.name} handed back ${plural(requeued, 'job')}: ${reason}`);
    this.scheduleDispatch();
  }

  private onQueued(worker: WorkerRecord, refs: JobRef[]): void {
    const byClient = new Map<ClientRecord, JobRef[]>();
    for (const ref of refs) {
      const job = worker.running.get(ref.id);
      if (!job || job.attempt !== ref.attempt) continue;
      let list = byClient.get(job.client);
      if (!list) byClient.set(job.client, (list = []));
      list.push({ id: job.id, attempt: job.attempt, worker: worker.name });
    }
    for (const [client, jobs] of byClient) this.clientChannel!.send(client.peer, { type: 'queued', jobs });
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
      this.stats.completed++;
      if (job.client.jobs.get(job.id) !== job) continue; // the client has gone
      job.client.jobs.delete(job.id);
      let list = byClient.get(job.client);
      if (!list) byClient.set(job.client, (list = []));
      list.push({ ...result, id: job.id });
    }
    for (const [client, list] of byClient) this.clientChannel!.send(client.peer, { type: 'result', results: list });
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
    while (this.queue.size > 0) {
      const worker = this.workers.pickFree();
      if (!worker) break;
      const job = this.queue.take()!;
      job.attempt++;
      job.worker = worker;
      worker.running.set(job.key, job);
      let batch = batches.get(worker);
      if (!batch) batches.set(worker, (batch = []));
      batch.push({ id: job.key, cmd: job.cmd, attempt: job.attempt, timeout: job.timeout, idleTimeout: job.idleTimeout });
    }
    for (const [worker, jobs] of batches) {
      this.stats.dispatched += jobs.length;
      this.workerChannel!.send(worker.peer, { type: 'job', jobs });
    }
  }

  /** A snapshot of each worker's state, for logs and a later status view. */
  workerStates(): Array<{ name: string; state: string; running: number; slots: number }> {
    return [...this.workers.values()].map((w) => ({ name: w.name, state: workerState(w), running: w.running.size, slots: w.slots }));
  }
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

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function assertNever(value: never): never {
  throw new Error(`unhandled message ${JSON.stringify(value)}`);
}
