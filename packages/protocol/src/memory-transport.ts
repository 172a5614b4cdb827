import { TestcloudError } from './errors.js';
import type { Routed } from './channel.js';
import type { Message } from './messages.js';

/**
 * `mem://NAME` endpoints: a broker, its workers and a client in one process (`testclient --local`)
 * hand each other message objects. Over ZeroMQ, even inproc, every message was encoded to JSON,
 * copied through the socket and parsed and validated again: about a fifth of the process's CPU on
 * a run of tiny jobs. Here nothing crosses a process, let alone a trust boundary, so there is
 * nothing to validate, and the codec stays the one place that turns messages into frames.
 *
 * The semantics follow a ZeroMQ ROUTER and its DEALERs, so that the broker and its links cannot
 * tell the difference: a router learns a peer when it first hears from it, drops what it sends
 * to a peer it does not know, and a dealer that connects again with the same routing id takes the
 * old one's place. Delivery is in order and never synchronous: a message is handled in a later
 * microtask, never inside the send, so no handler runs inside another. (Unlike a socket, it can
 * come before the sender's process.nextTick callbacks.)
 *
 * A message object is shared by sender and receiver. Senders build a fresh object for every
 * message and nobody changes one after sending or receiving it: keep it so. (A review froze every
 * message in flight and ran --local with each executor, retries, timeouts and halts: nothing
 * wrote to one.) The message size limit is not applied: nothing is framed.
 */

const SCHEME = 'mem://';

export function isMemoryEndpoint(endpoint: string): boolean {
  return endpoint.startsWith(SCHEME);
}

/** What the broker needs of a ROUTER side, whichever the transport. */
export interface RouterPort {
  send(peer: Buffer, message: Message): void;
  messages(): AsyncGenerator<Routed>;
  /** Resolves once everything sent so far has left. */
  drained(): Promise<void>;
  close(): void;
}

/** What a link needs of a DEALER side, whichever the transport. */
export interface DealerPort {
  send(message: Message): void;
  messages(): AsyncGenerator<Message>;
  drained(): Promise<void>;
  close(): void;
}

/** Messages waiting for one reader; the reader sleeps while there are none. */
class Mailbox<T> {
  private items: T[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private closed = false;

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    const wake = this.wake;
    if (wake) {
      this.wake = undefined;
      wake();
    }
  }

  /** Ends the reader's loop; what it has not read yet is dropped, as a closed socket drops it. */
  close(): void {
    this.closed = true;
    this.items = [];
    this.head = 0;
    this.wake?.();
  }

  async *read(): AsyncGenerator<T> {
    while (!this.closed) {
      if (this.head === this.items.length) {
        this.items = [];
        this.head = 0;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const item = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      yield item;
    }
  }
}

const routers = new Map<string, MemoryRouter>();

export class MemoryRouter implements RouterPort {
  private readonly inbox = new Mailbox<Routed>();
  /** Dealers by routing id (latin1), the newest connection of each. */
  private readonly peers = new Map<string, MemoryDealer>();

  private constructor(readonly endpoint: string) {}

  /** Listens on `mem://NAME`; a name can be bound once per process at a time. */
  static bind(endpoint: string): MemoryRouter {
    if (!isMemoryEndpoint(endpoint) || endpoint.length === SCHEME.length) {
      throw new TestcloudError('TESTCLOUD_BAD_ENDPOINT', `"${endpoint}" is not an in-process endpoint (expected mem://NAME)`);
    }
    if (routers.has(endpoint)) throw new TestcloudError('TESTCLOUD_BIND_FAILED', `cannot listen on ${endpoint}: it is already bound in this process`);
    const router = new MemoryRouter(endpoint);
    routers.set(endpoint, router);
    return router;
  }

  /** Whether a router listens on `endpoint` in this process. */
  static isBound(endpoint: string): boolean {
    return routers.has(endpoint);
  }

  send(peer: Buffer, message: Message): void {
    this.peers.get(peer.toString('latin1'))?.deliver(message);
  }

  messages(): AsyncGenerator<Routed> {
    return this.inbox.read();
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (routers.get(this.endpoint) === this) routers.delete(this.endpoint);
    this.inbox.close();
  }

  /** @internal A dealer's message; the first one (or the first after a reconnect) introduces it. */
  receive(dealer: MemoryDealer, message: Message): void {
    const known = this.peers.get(dealer.id);
    if (known !== dealer) this.peers.set(dealer.id, dealer);
    this.inbox.push({ peer: dealer.peer, message });
  }

  /** @internal */
  forget(dealer: MemoryDealer): void {
    if (this.peers.get(dealer.id) === dealer) this.peers.delete(dealer.id);
  }
}

export class MemoryDealer implements DealerPort {
  readonly peer: Buffer;
  /** @internal */
  readonly id: string;
  private readonly inbox = new Mailbox<Message>();
  private router: MemoryRouter | undefined;
  private closed = false;

  /**
   * Like a ZeroMQ connect, this succeeds with nobody listening; unlike it, what is sent before a
   * router is bound is lost (a BrokerLink greets again until it is answered).
   */
  constructor(
    private readonly endpoint: string,
    routingId: string,
  ) {
    this.peer = Buffer.from(routingId, 'latin1');
    this.id = routingId;
  }

  send(message: Message): void {
    if (this.closed) return;
    // Looked up on every send, so a router bound (or bound again) later is found.
    const router = routers.get(this.endpoint);
    if (router !== this.router) {
      this.router?.forget(this);
      this.router = router;
    }
    router?.receive(this, message);
  }

  messages(): AsyncGenerator<Message> {
    return this.inbox.read();
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
    this.router?.forget(this);
    this.inbox.close();
  }

  /** @internal */
  deliver(message: Message): void {
    if (!this.closed) this.inbox.push(message);
  }
}
