import { decode, encode } from './codec.js';
import { ProtocolError } from './errors.js';
import type { Message } from './messages.js';
import type { DealerPort, RouterPort } from './memory-transport.js';
import { SendQueue, type SendSocket } from './send-queue.js';

/**
 * The shape of a zeromq.js v6 socket that channels need; kept structural so this package does
 * not depend on zeromq and tests can drive a channel with anything that looks like a socket.
 */
export interface FrameSocket extends SendSocket {
  [Symbol.asyncIterator](): AsyncIterator<Buffer[]>;
  close(): void;
}

export interface ChannelOptions {
  maxMessageSize?: number;
  /** Called for every message that failed to decode; the message is dropped either way. */
  onDropped?: (error: ProtocolError, peer: Buffer | undefined) => void;
  /** Called when a send fails for a reason other than the socket being closed. */
  onSendError?: (error: unknown) => void;
}

/**
 * What both sides share: one socket, its one send queue, and a receive loop that decodes, and
 * counts and drops what does not decode. A side only says how a peer is named on its wire, in
 * `receive` and in its own `send`.
 */
export abstract class MessageChannel<Received> {
  protected readonly queue: SendQueue;
  /** Messages that failed to decode so far. */
  dropped = 0;

  constructor(
    readonly socket: FrameSocket,
    private readonly options: ChannelOptions = {},
  ) {
    this.queue = new SendQueue(socket, options.onSendError ?? (() => {}));
  }

  /** Resolves once everything sent so far has been handed to ZeroMQ. */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  /** Closes the socket: what is still queued is dropped, and `messages()` ends. */
  close(): void {
    this.socket.close();
  }

  /** Every message received until the socket closes, garbage left out. */
  async *messages(): AsyncGenerator<Received> {
    for await (const frames of this.socket) {
      const received = this.receive(frames);
      if (received !== undefined) yield received;
    }
  }

  /** What `messages()` yields for one message off the socket, or undefined to skip it. */
  protected abstract receive(frames: Buffer[]): Received | undefined;

  /** The message in `frames`, or undefined (counted and reported) when they do not decode. */
  protected decodeOrDrop(frames: readonly Buffer[], peer: Buffer | undefined): Message | undefined {
    try {
      return decode(frames, this.options);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.dropped++;
      this.options.onDropped?.(error, peer);
      return undefined;
    }
  }
}

/** A DEALER-side channel: messages in, messages out, garbage counted and dropped. */
export class Channel extends MessageChannel<Message> implements DealerPort {
  send(message: Message): void {
    this.queue.push(encode(message));
  }

  protected receive(frames: Buffer[]): Message | undefined {
    return this.decodeOrDrop(frames, undefined);
  }
}

export interface Routed {
  peer: Buffer;
  message: Message;
}

/** A ROUTER-side channel: every message in and out carries the peer's routing id. */
export class RouterChannel extends MessageChannel<Routed> implements RouterPort {
  send(peer: Buffer, message: Message): void {
    this.queue.push([peer, ...encode(message)]);
  }

  protected receive(frames: Buffer[]): Routed | undefined {
    const peer = frames[0];
    if (peer === undefined) return undefined;
    const message = this.decodeOrDrop(frames.slice(1), peer);
    return message === undefined ? undefined : { peer, message };
  }
}
