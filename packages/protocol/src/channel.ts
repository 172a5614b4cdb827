import { decode, encode } from './codec.js';
import { ProtocolError } from './errors.js';
import type { Message } from './messages.js';

/**
 * The shape of a zeromq.js v6 socket that channels need; kept structural so this package does
 * not depend on zeromq and tests can drive a channel with anything that looks like a socket.
 */
export interface FrameSocket {
  send(frames: Buffer[]): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<Buffer[]>;
  readonly closed: boolean;
}

export interface ChannelOptions {
  maxMessageSize?: number;
  /** Called for every message that failed to decode; the message is dropped either way. */
  onDropped?: (error: ProtocolError, peer: Buffer | undefined) => void;
  /** Called when a send fails for a reason other than the socket being closed. */
  onSendError?: (error: unknown) => void;
}

/**
 * zeromq.js allows one pending send per socket, so every send goes through this one FIFO and a
 * single pump drains it. Callers never await a send: ordering is kept, errors are reported.
 */
class SendQueue {
  private items: Buffer[][] = [];
  private head = 0;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: FrameSocket,
    private readonly onError: (error: unknown) => void,
  ) {}

  push(frames: Buffer[]): void {
    this.items.push(frames);
    if (!this.pumping) void this.pump();
  }

  get pending(): number {
    return this.items.length - this.head;
  }

  /** Resolves once everything queued so far has been handed to ZeroMQ. */
  drained(): Promise<void> {
    if (!this.pumping && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    while (this.head < this.items.length) {
      const frames = this.items[this.head]!;
      this.items[this.head++] = undefined as unknown as Buffer[];
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      if (this.socket.closed) continue;
      try {
        await this.socket.send(frames);
      } catch (error) {
        if (!this.socket.closed) this.onError(error);
      }
    }
    this.items = [];
    this.head = 0;
    this.pumping = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** A DEALER-side channel: messages in, messages out, garbage counted and dropped. */
export class Channel {
  private readonly queue: SendQueue;
  dropped = 0;

  constructor(
    readonly socket: FrameSocket,
    private readonly options: ChannelOptions = {},
  ) {
    this.queue = new SendQueue(socket, options.onSendError ?? (() => {}));
  }

  send(message: Message): void {
    this.queue.push(encode(message));
  }

  drained(): Promise<void> {
    return this.queue.drained();
  }

  async *messages(): AsyncGenerator<Message> {
    for await (const frames of this.socket) {
      try {
        yield decode(frames, this.options);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.dropped++;
        this.options.onDropped?.(error, undefined);
      }
    }
  }
}

export interface Routed {
  peer: Buffer;
  message: Message;
}

/** A ROUTER-side channel: every message in and out carries the peer's routing id. */
export class RouterChannel {
  private readonly queue: SendQueue;
  dropped = 0;

  constructor(
    readonly socket: FrameSocket,
    private readonly options: ChannelOptions = {},
  ) {
    this.queue = new SendQueue(socket, options.onSendError ?? (() => {}));
  }

  send(peer: Buffer, message: Message): void {
    this.queue.push([peer, ...encode(message)]);
  }

  drained(): Promise<void> {
    return this.queue.drained();
  }

  async *messages(): AsyncGenerator<Routed> {
    for await (const frames of this.socket) {
      const [peer, ...rest] = frames;
      if (peer === undefined) continue;
      try {
        yield { peer, message: decode(rest, this.options) };
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.dropped++;
        this.options.onDropped?.(error, peer);
      }
    }
  }
}
