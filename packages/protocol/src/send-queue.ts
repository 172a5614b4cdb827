/** The part of a zeromq.js socket that sending needs. */
export interface SendSocket {
  send(frames: Buffer[]): Promise<void>;
  readonly closed: boolean;
}

/**
 * zeromq.js allows one pending send per socket, so every send goes through this one FIFO and a
 * single pump drains it. Callers never await a send: ordering is kept, errors are reported.
 */
export class SendQueue {
  private items: Buffer[][] = [];
  private head = 0;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly socket: SendSocket,
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
