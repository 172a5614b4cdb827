import { randomBytes } from 'node:crypto';
import { onTestFinished } from 'vitest';
import { Dealer, Router } from 'zeromq';
import { decode, encode, type Message } from '@testcloud/protocol';

/** Anything with a describe() for failure messages (a Proc). */
interface Describable {
  describe(): string;
}

/**
 * A raw ZeroMQ socket in a test, speaking the protocol or garbage: sends frames in order
 * (zeromq.js allows one send at a time) and keeps every message it receives that decodes.
 * Closed when the test finishes.
 */
export class RawPeer {
  readonly received: Array<{ peer: Buffer | undefined; message: Message }> = [];
  private readonly waiters = new Set<() => void>();
  private sending = Promise.resolve();

  constructor(
    readonly socket: Dealer | Router,
    routed: boolean,
    onMessage?: (message: Message, peer: Buffer | undefined) => void,
    /** Added to failure messages (the fuzz seed). */
    private readonly label = '',
  ) {
    onTestFinished(() => socket.close());
    void (async () => {
      for await (const frames of socket) {
        const [peer, rest] = routed ? [frames[0], frames.slice(1)] : [undefined, frames];
        let message: Message;
        try {
          message = decode(rest);
        } catch {
          continue; // the programs under test only send valid messages; anything else shows as a missing reply
        }
        this.received.push({ peer, message });
        onMessage?.(message, peer);
        for (const waiter of [...this.waiters]) waiter();
      }
    })().catch(() => {});
  }

  send(frames: Buffer[]): Promise<void> {
    this.sending = this.sending.then(() => this.socket.send(frames));
    return this.sending;
  }

  /** Sends a valid message (to `peer` on a ROUTER). */
  message(message: Message, peer?: Buffer): Promise<void> {
    return this.send(peer ? [peer, ...encode(message)] : encode(message));
  }

  /** Sends `message` every `interval` ms until the test ends (or the returned function is called), as a live peer does. */
  keepAlive(message: Message = { type: 'heartbeat' }, interval = 100): () => void {
    const timer = setInterval(() => void this.message(message).catch(() => {}), interval);
    const stop = () => clearInterval(timer);
    onTestFinished(stop);
    return stop;
  }

  /** Resolves with the first `check` of a received message that is not undefined; on timeout, fails showing `context`. */
  waitFor<T>(check: (message: Message, peer: Buffer | undefined) => T | undefined, what: string, context?: Describable, timeout = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        for (const { peer, message } of this.received) {
          const value = check(message, peer);
          if (value !== undefined) {
            cleanup();
            resolve(value);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        const got = this.received.slice(-5).map(({ message }) => JSON.stringify(message).slice(0, 200));
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}${this.label}; last received:\n${got.join('\n')}\n${context?.describe() ?? ''}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(attempt);
      };
      this.waiters.add(attempt);
      attempt();
    });
  }
}

/** A DEALER connected to `endpoint`, with a routing id of its own that survives reconnects. */
export function rawDealer(endpoint: string, label = ''): RawPeer {
  const socket = new Dealer({ linger: 0, routingId: `raw-${randomBytes(4).toString('hex')}`, reconnectInterval: 10, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  socket.connect(endpoint);
  return new RawPeer(socket, false, undefined, label);
}
