import { randomBytes } from 'node:crypto';
import { zeromq } from './zeromq.js';
import { Channel } from './channel.js';
import { TestcloudError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from './codec.js';
import { createLogger, type Logger } from './logger.js';
import type { CurveSettings } from './keys.js';
import { MemoryDealer, MemoryRouter, isMemoryEndpoint, type DealerPort } from './memory-transport.js';
import type { Message, MessageOfType } from './messages.js';

export const DEFAULT_HEARTBEAT = 1000;
export const DEFAULT_LIVENESS = 3;
export const RECONNECT_MIN = 1000;
export const RECONNECT_MAX = 32_000;

export interface Session {
  /** The broker's incarnation id. */
  broker: string;
  /** True on the first session, and whenever the broker is a new incarnation (it restarted). */
  newBroker: boolean;
  /** The most commands the broker holds for one client, if it said. */
  window: number | undefined;
}

export interface BrokerLinkOptions {
  endpoint: string;
  role: 'worker' | 'client';
  /** READY or HELLO: sent on every (re)connect. It means "I hold nothing of yours". */
  greeting(): Message;
  /** Our heartbeat; a worker adds its state and readings. */
  heartbeat?(): MessageOfType<'heartbeat'>;
  /** Everything but OK, HEARTBEAT and BYE, which the link handles itself. */
  onMessage(message: Message): void;
  /** The broker answered the greeting. */
  onSession(session: Session): void;
  /** The link is down (silence, a dropped connection, or the broker said goodbye). */
  onLost?(reason: string): void;
  /** The broker refused our security handshake (wrong keys, or CURVE on one side only). */
  onHandshakeError?(reason: string): void;
  /** Heartbeat interval until the broker announces its own in OK, ms. */
  heartbeatInterval?: number;
  /** Missed heartbeats before the broker counts as gone. */
  liveness?: number;
  reconnectMin?: number;
  reconnectMax?: number;
  maxMessageSize?: number;
  /** CURVE: our key pair and the broker's public key. Without it the link is plain text. */
  curve?: CurveSettings;
  logger?: Logger;
}

/**
 * Throws a one-line TestcloudError unless a link can connect to `endpoint`. ZeroMQ itself is
 * asked (a socket that is closed at once): it refuses a malformed address or an unknown
 * transport only when connect() is called, which for a link happens later, in a timer.
 */
export function checkEndpoint(endpoint: string): void {
  if (isMemoryEndpoint(endpoint)) {
    if (!MemoryRouter.isBound(endpoint)) throw new TestcloudError('TESTCLOUD_BAD_ENDPOINT', `no broker of this process listens on ${endpoint}`);
    return;
  }
  const probe = new (zeromq().Dealer)({ linger: 0 });
  try {
    probe.connect(endpoint);
  } catch (cause) {
    throw new TestcloudError('TESTCLOUD_BAD_ENDPOINT', `cannot connect to "${endpoint}": ${(cause as Error).message} (expected e.g. tcp://127.0.0.1:2224)`, { cause });
  } finally {
    probe.close();
  }
}

/**
 * A worker's or client's link to its broker, after the ZeroMQ guide's Paranoid Pirate: any
 * traffic counts as a heartbeat; after `liveness` silent intervals (or a dropped connection, or
 * a BYE) the link greets the broker again on a fresh socket, backing off from 1 s to 32 s. Every
 * greeting starts a new session; the owner resynchronises in onSession.
 */
export class BrokerLink {
  state: 'connecting' | 'connected' | 'closed' = 'connecting';
  broker: string | undefined;
  /** When the link last went down (or started), for callers that give up after a while. */
  downSince = Date.now();
  /** Why the last security handshake failed, if one did: the likely reason we cannot connect. */
  handshakeError: string | undefined;

  private readonly log: Logger;
  private readonly routingId: string;
  /** The current connection; a reconnect replaces it, and loops of older ones end. */
  private port: DealerPort | undefined;
  private interval: number;
  private backoff: number;
  private lastHeard = 0;
  private greetedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Receive loops still running (one per socket; an old socket's ends when it is closed). */
  private readonly loops = new Set<Promise<void>>();

  constructor(private readonly options: BrokerLinkOptions) {
    checkEndpoint(options.endpoint);
    this.log = options.logger ?? createLogger(options.role === 'worker' ? 'testworker' : 'testclient');
    this.routingId = `${options.role[0]}-${randomBytes(8).toString('hex')}`;
    this.interval = options.heartbeatInterval ?? DEFAULT_HEARTBEAT;
    this.backoff = options.reconnectMin ?? RECONNECT_MIN;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  start(): void {
    this.open();
    this.schedule();
  }

  /** Sends while connected; while not, drops (the owner resends what matters in onSession). */
  send(message: Message): boolean {
    if (this.state !== 'connected') return false;
    this.port!.send(message);
    return true;
  }

  /** Says BYE (when connected) and closes, waiting at most `flushTimeout` ms for it to leave. */
  async close(reason: string, flushTimeout = 1000): Promise<void> {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    clearTimeout(this.timer);
    if (wasConnected && this.port) {
      this.port.send({ type: 'bye', reason });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.port.drained(), new Promise((resolve) => (timer = setTimeout(resolve, flushTimeout)))]);
      clearTimeout(timer);
    }
    this.port?.close();
    await Promise.allSettled(this.loops);
  }

  private open(): void {
    // mem:// only where an embedded broker listens in this process (testclient --local); else it
    // goes to ZeroMQ, which refuses it like any endpoint it does not know.
    const endpoint = this.options.endpoint;
    const port = isMemoryEndpoint(endpoint) && MemoryRouter.isBound(endpoint) ? new MemoryDealer(endpoint, this.routingId) : this.openSocket();
    this.port = port;
    const loop = this.serve(port);
    this.loops.add(loop);
    void loop.finally(() => this.loops.delete(loop));
    this.greet();
  }

  /** A ZeroMQ DEALER to the broker, watched for dropped connections and refused handshakes. */
  private openSocket(): DealerPort {
    const maxMessageSize = this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const socket = new (zeromq().Dealer)({
      linger: 0,
      maxMessageSize,
      // The same routing id on every socket lets the broker's ROUTER hand the old identity over.
      routingId: this.routingId,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 2000,
      ...(this.options.curve
        ? { curveServerKey: this.options.curve.serverKey, curvePublicKey: this.options.curve.publicKey, curveSecretKey: this.options.curve.secretKey }
        : {}),
    });
    const port = new Channel(socket, {
      maxMessageSize,
      onDropped: (error) => this.log.limited(`drop-${error.code}`, `dropped a bad message from the broker (${error.code}: ${error.message})`),
      onSendError: (error) => this.log.limited('send', `cannot send to the broker: ${String(error)}`),
    });
    let dropped = false;
    socket.events.on('disconnect', () => {
      if (this.port !== port || this.state === 'closed') return;
      dropped = true;
      this.lost('the connection to the broker dropped');
    });
    const onHandshakeError = (event: { error?: Error & { code?: string } }) => {
      this.handshakeError =
        event.error?.code === 'ERR_ZMTP_MECHANISM_MISMATCH'
          ? 'one side uses CURVE keys and the other does not'
          : (event.error?.message ?? 'the security handshake failed');
      this.log.limited('handshake', `the broker at ${this.options.endpoint} refused the security handshake: ${this.handshakeError}`);
      this.options.onHandshakeError?.(this.handshakeError);
    };
    socket.events.on('handshake:error:auth', onHandshakeError);
    socket.events.on('handshake:error:protocol', onHandshakeError);
    socket.events.on('handshake:error:other', onHandshakeError);
    socket.events.on('connect', () => {
      if (this.port !== port || this.state === 'closed' || !dropped) return;
      // ZeroMQ reconnected by itself (the broker restarted, or the link came back): new session.
      dropped = false;
      this.greet();
    });
    socket.connect(this.options.endpoint);
    return port;
  }

  private async serve(port: DealerPort): Promise<void> {
    try {
      for await (const message of port.messages()) {
        if (this.port !== port || this.state === 'closed') break;
        this.lastHeard = Date.now();
        this.onMessage(message);
      }
    } catch (error) {
      if (this.port === port && this.state !== 'closed') this.log.warn(`receive loop failed: ${String(error)}`);
    }
  }

  private onMessage(message: Message): void {
    switch (message.type) {
      case 'ok': {
        const newBroker = this.broker !== message.broker;
        if (message.heartbeat > 0) this.interval = message.heartbeat;
        this.broker = message.broker;
        if (this.state !== 'connected' || newBroker) {
          this.state = 'connected';
          this.backoff = this.options.reconnectMin ?? RECONNECT_MIN;
          this.options.onSession({ broker: message.broker, newBroker, window: message.window });
        }
        return;
      }
      case 'heartbeat':
        // A broker that restarted between two of our heartbeats: greet the new one.
        if (message.broker !== undefined && this.broker !== undefined && message.broker !== this.broker && this.state === 'connected') {
          this.lost(`the broker restarted (incarnation ${message.broker})`);
          this.greet();
        }
        return;
      case 'bye':
        if (this.state === 'connected') this.lost(`the broker said goodbye: ${message.reason}`);
        // It may be shutting down or may have forgotten us; a new greeting settles both.
        this.greet();
        return;
      default:
        this.options.onMessage(message);
    }
  }

  private lost(reason: string): void {
    if (this.state === 'connected') {
      this.state = 'connecting';
      this.downSince = Date.now();
      this.options.onLost?.(reason);
    }
  }

  private greet(): void {
    if (this.state === 'closed') return;
    this.state = this.state === 'connected' ? 'connected' : 'connecting';
    this.greetedAt = Date.now();
    this.port!.send(this.options.greeting());
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.tick();
      if (this.state !== 'closed') this.schedule();
    }, this.state === 'connected' ? this.interval : Math.min(this.interval, 250));
  }

  private tick(): void {
    const now = Date.now();
    const liveness = this.options.liveness ?? DEFAULT_LIVENESS;
    if (this.state === 'connected') {
      if (now - this.lastHeard > this.interval * liveness) {
        this.lost(`no word from the broker for ${((now - this.lastHeard) / 1000).toFixed(1)}s`);
        this.reopen();
        return;
      }
      this.port!.send(this.options.heartbeat?.() ?? { type: 'heartbeat' });
    } else if (now - this.greetedAt > this.backoff) {
      // Unanswered greeting: start over on a fresh socket, waiting longer each time.
      this.backoff = Math.min(this.backoff * 2, this.options.reconnectMax ?? RECONNECT_MAX);
      this.reopen();
    }
  }

  private reopen(): void {
    this.port?.close();
    this.open();
  }
}
