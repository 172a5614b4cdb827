import { randomBytes } from 'node:crypto';
import {
  DEFAULT_HEARTBEAT,
  DEFAULT_LIVENESS,
  DEFAULT_MAX_MESSAGE_SIZE,
  MemoryRouter,
  RouterChannel,
  isMemoryEndpoint,
  createLogger,
  type KeyPair,
  type LoadReport,
  type Logger,
  type Message,
  type ProtocolError,
  type RouterPort,
  type SubmittedCommand,
  assertNever,
  plural,
  zeromq,
} from '@testcloud/protocol';
import { bindSocket, checkBindAllowed } from './bind-policy.js';
import { printable } from './printable.js';
import { workerState, type ClientRecord, type WorkerRecord } from './records.js';
import { DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_LOST, DEFAULT_MAX_QUEUED, Scheduler, type JobStats } from './scheduler.js';
import { ZapHandler, type AllowLists } from './zap-handler.js';

export interface BrokerOptions {
  /** Where clients connect (ROUTER). `tcp://127.0.0.1:*` picks a free port. */
  clientEndpoint: string;
  /** Where workers, or downstream brokers, connect (ROUTER). */
  workerEndpoint: string;
  /** Allow binding a non-loopback address without authentication. */
  insecure?: boolean;
  /** The endpoints may be mem:// names, for a worker and a client in this same process. */
  inProcess?: boolean;
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

export { DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_LOST, DEFAULT_MAX_QUEUED };

export interface BrokerStats extends JobStats {
  /** Messages dropped because they did not decode, by ProtocolError code or 'unexpected'. */
  dropped: Record<string, number>;
}

/**
 * The broker: accepts jobs from clients, queues them fairly, hands them to free worker slots
 * and relays QUEUED and RESULT back to the client that submitted them.
 */
export class Broker {
  /** This incarnation's id, sent in every OK so peers can tell a restarted broker. */
  readonly id = randomBytes(8).toString('hex');
  readonly stats: BrokerStats;
  endpoints = { client: '', worker: '' };

  private readonly log: Logger;
  private readonly clients = new Map<string, ClientRecord>();
  private readonly jobs: Scheduler;
  private clientChannel: RouterPort | undefined;
  private workerChannel: RouterPort | undefined;
  private loops: Promise<void>[] = [];
  private stopping = false;
  private ticker: NodeJS.Timeout | undefined;
  private zap: ZapHandler | undefined;
  private localClients = 0;
  private readonly heartbeat: number;
  private readonly maxQueued: number;
  private readonly liveness: number;

  constructor(private readonly options: BrokerOptions) {
    this.log = options.logger ?? createLogger('testbroker');
    this.heartbeat = options.heartbeat ?? DEFAULT_HEARTBEAT;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.liveness = options.liveness ?? DEFAULT_LIVENESS;
    this.jobs = new Scheduler({
      maxQueued: this.maxQueued,
      ackTimeout: options.ackTimeout ?? DEFAULT_ACK_TIMEOUT,
      maxLost: options.maxLost ?? DEFAULT_MAX_LOST,
      log: this.log,
      toWorker: (worker, message) => this.workerChannel!.send(worker.peer, message),
    });
    // One object, so callers see the scheduler's counts as they change.
    this.stats = Object.assign(this.jobs.stats, { dropped: {} as Record<string, number> });
  }

  get queued(): number {
    return this.jobs.queued;
  }

  get workerCount(): number {
    return this.jobs.workers.size;
  }

  async start(): Promise<{ client: string; worker: string }> {
    const insecure = this.options.insecure ?? false;
    const security = this.options.security;
    // mem:// never leaves the process, and only an embedded broker (testclient --local) may use
    // it; anything else must be a ZeroMQ endpoint.
    const inProcess = (endpoint: string) => this.options.inProcess === true && isMemoryEndpoint(endpoint);
    const publicBinds = [this.options.clientEndpoint, this.options.workerEndpoint].filter(
      (endpoint) => !inProcess(endpoint) && checkBindAllowed(endpoint, { insecure: insecure || security !== undefined }).public,
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
    const channelOptions = (side: string) => ({
      maxMessageSize,
      onDropped: (error: ProtocolError) => this.drop(side, error.code, error.message),
      onSendError: (error: unknown) => this.log.limited(`send-${side}`, `cannot send to a ${side}: ${String(error)}`),
    });
    const open = async (endpoint: string, side: 'client' | 'worker'): Promise<[RouterPort, string]> => {
      // In one process (testclient --local) nothing needs ZeroMQ; see memory-transport.ts.
      if (inProcess(endpoint)) return [MemoryRouter.bind(endpoint), endpoint];
      const socket = new (zeromq().Router)({ ...socketOptions, ...curve(side === 'client' ? 'clients' : 'workers') });
      const bound = await bindSocket(socket, endpoint).catch((error: unknown) => {
        socket.close();
        throw error;
      });
      return [new RouterChannel(socket, channelOptions(side)), bound];
    };
    [this.clientChannel, this.endpoints.client] = await open(this.options.clientEndpoint, 'client');
    [this.workerChannel, this.endpoints.worker] = await open(this.options.workerEndpoint, 'worker');
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
    this.jobs.stopped = true;
    clearInterval(this.ticker);
    for (const worker of this.jobs.workers.values()) this.workerChannel?.send(worker.peer, { type: 'bye', reason: 'broker shutting down' });
    for (const client of this.clients.values()) if (!client.local) client.deliver({ type: 'bye', reason: 'broker shutting down' });
    await Promise.all([this.workerChannel?.drained(), this.clientChannel?.drained()]);
    this.clientChannel?.close();
    this.workerChannel?.close();
    await Promise.allSettled(this.loops);
    await this.zap?.stop();
  }

  private async serve(channel: RouterPort, handle: (peer: Buffer, message: Message) => void): Promise<void> {
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
    const key = `local-${this.localClients++}`;
    const client: ClientRecord = { peer: Buffer.from(key), key, name, jobs: new Map(), lastSeen: Date.now(), local: true, deliver };
    this.clients.set(key, client);
    return client;
  }

  /** Takes a client's commands into the queue; returns the ids refused for --max-queued. */
  accept(client: ClientRecord, jobs: SubmittedCommand[]): number[] {
    return this.jobs.accept(client, jobs);
  }

  /** Stops some of a client's jobs: dropped if queued, cancelled on their worker if running. */
  cancel(client: ClientRecord, ids: number[]): void {
    this.jobs.cancel(client, ids);
  }

  /** Slots the broker's workers offer right now, for an upstream broker to see as ours. */
  capacity(): number {
    return this.jobs.capacity();
  }

  /** Forgets a client: its queued jobs are dropped and its running ones cancelled on their workers. */
  removeClient(client: ClientRecord, reason: string): void {
    this.clients.delete(client.key);
    const { dropped, cancelled } = this.jobs.dropClient(client);
    if (dropped + cancelled > 0) this.log.info(`client ${client.name} ${reason}: dropped ${plural(dropped, 'queued job')}, cancelled ${plural(cancelled, 'running job')}`);
  }

  // ---- workers ------------------------------------------------------------------------------

  private onWorkerMessage(peer: Buffer, message: Message): void {
    const key = peer.toString('hex');
    const worker = this.jobs.workers.get(key);
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
        this.jobs.confirmed(worker!, message.jobs);
        return;
      case 'result':
        this.jobs.finished(worker!, message.results);
        return;
      case 'heartbeat':
        this.onHeartbeat(worker!, message);
        return;
      case 'bye':
        if (worker) this.removeWorker(worker, printable(message.reason) || 'said goodbye');
        return;
      case 'requeue':
        this.jobs.handedBack(worker!, message.jobs, printable(message.reason));
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
    if (known) this.jobs.requeueAll(known, 'reconnected');
    const slots = Math.min(ready.slots, MAX_SLOTS);
    const worker: WorkerRecord = known ?? {
      peer,
      key,
      name: printable(ready.worker),
      host: printable(ready.host),
      pid: ready.pid,
      slots,
      prefetch: 0,
      offered: slots,
      downstream: ready.downstream === true,
      weight: ready.weight,
      reported: undefined,
      load: undefined,
      running: new Map(),
      lastSeen: Date.now(),
    };
    // Offered starts at the slots alone: the worker's heartbeats raise it into its prefetch.
    const prefetch = Math.min(ready.prefetch ?? 0, MAX_SLOTS);
    Object.assign(worker, { name: printable(ready.worker), host: printable(ready.host), pid: ready.pid, slots, prefetch, offered: slots, downstream: ready.downstream === true, weight: ready.weight > 0 ? ready.weight : 1 });
    if (!known) {
      this.jobs.workers.add(worker);
      this.log.info(`worker ${worker.name} joined with ${plural(worker.slots, 'slot')} (${plural(this.jobs.workers.size, 'worker')}, ${plural(this.jobs.workers.totalSlots(), 'slot')} in all)`);
    }
    this.workerChannel!.send(peer, { type: 'ok', broker: this.id, heartbeat: this.heartbeat });
    this.jobs.scheduleDispatch();
  }

  private removeWorker(worker: WorkerRecord, reason: string): void {
    this.jobs.workers.delete(worker);
    const requeued = this.jobs.requeueAll(worker, reason);
    this.log.info(`worker ${worker.name} left: ${reason}${requeued ? `; requeued ${plural(requeued, 'job')}` : ''} (${plural(this.jobs.workers.size, 'worker')} left)`);
  }

  private onHeartbeat(worker: WorkerRecord, beat: Extract<Message, { type: 'heartbeat' }>): void {
    const before = workerState(worker);
    if (beat.offered !== undefined) {
      // A downstream broker's slots grow and shrink with its own pool; a worker's never exceed
      // READY's slots and prefetch.
      if (worker.downstream && beat.offered > worker.slots) worker.slots = Math.min(beat.offered, MAX_SLOTS);
      worker.offered = Math.min(beat.offered, worker.slots + worker.prefetch);
    }
    if (beat.state !== undefined) worker.reported = beat.state;
    if (beat.load !== undefined) worker.load = beat.load;
    const after = workerState(worker);
    if (after !== before && (after === 'withheld' || after === 'paused' || after === 'draining' || before === 'withheld' || before === 'paused' || before === 'draining')) {
      const load = worker.load ? `; load ${worker.load.load}, cpu ${worker.load.cpu}%, ${worker.load.freeMem} MiB free` : '';
      this.log.info(`worker ${worker.name} is ${after} (offers ${worker.offered} of ${plural(worker.slots, 'slot')}${load})`);
    }
    this.jobs.scheduleDispatch();
  }

  /**
   * Once a heartbeat: tell every peer we are alive (with our incarnation id), expire the silent
   * ones, and take jobs back from workers that never confirmed them.
   */
  private tick(): void {
    const now = Date.now();
    const window = this.heartbeat * this.liveness;
    const beat = { type: 'heartbeat', broker: this.id } as const;
    for (const worker of [...this.jobs.workers.values()]) {
      if (now - worker.lastSeen > window) {
        this.removeWorker(worker, `expired: no heartbeat for ${((now - worker.lastSeen) / 1000).toFixed(1)}s`);
        continue;
      }
      this.workerChannel!.send(worker.peer, beat);
      this.jobs.reclaimUnacked(worker, now);
    }
    for (const client of [...this.clients.values()]) {
      if (client.local) continue;
      if (now - client.lastSeen > window) this.removeClient(client, `expired: no heartbeat for ${((now - client.lastSeen) / 1000).toFixed(1)}s`);
      else this.clientChannel!.send(client.peer, beat);
    }
  }

  /** SIGHUP: new allow-lists for the next handshakes; connected peers stay connected. */
  reloadAllowLists(allow: AllowLists): void {
    this.zap?.reload(allow);
  }

  /** A snapshot of each worker's state, for logs and a later status view. */
  workerStates(): Array<{ name: string; state: string; running: number; slots: number; offered: number; weight: number; load: LoadReport | undefined }> {
    return [...this.jobs.workers.values()].map((w) => ({
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
