import { PriorityDeque } from './priority-deque.js';

/**
 * Pending jobs, one queue per owner (client), taken round-robin across owners so that a client
 * with a long backlog cannot starve one that arrives later. Within an owner's queue, items of
 * higher `priorityOf` go first and equal ones keep their order (FIFO when all are 0).
 */
export class FairQueue<Owner, Item> {
  private readonly queues = new Map<Owner, PriorityDeque<Item>>();
  private ring: Owner[] = [];
  private cursor = 0;
  private total = 0;

  constructor(private readonly priorityOf: (item: Item) => number = () => 0) {}

  get size(): number {
    return this.total;
  }

  sizeOf(owner: Owner): number {
    return this.queues.get(owner)?.length ?? 0;
  }

  push(owner: Owner, item: Item): void {
    this.queueOf(owner).push(item);
    this.total++;
  }

  /** Puts an item back at the front of its owner's queue, among its priority (a job coming back from a worker). */
  unshift(owner: Owner, item: Item): void {
    this.queueOf(owner).unshift(item);
    this.total++;
  }

  take(): Item | undefined {
    while (this.ring.length > 0) {
      if (this.cursor >= this.ring.length) this.cursor = 0;
      const owner = this.ring[this.cursor]!;
      const queue = this.queues.get(owner)!;
      const item = queue.shift();
      if (item === undefined) {
        this.forget(owner);
        continue;
      }
      this.total--;
      if (queue.length === 0) this.forget(owner);
      else this.cursor++;
      return item;
    }
    return undefined;
  }

  /** Removes and returns every pending item of an owner. */
  remove(owner: Owner): Item[] {
    const queue = this.queues.get(owner);
    if (!queue) return [];
    const items = [...queue.drain()];
    this.total -= items.length;
    this.forget(owner);
    return items;
  }

  private queueOf(owner: Owner): PriorityDeque<Item> {
    let queue = this.queues.get(owner);
    if (!queue) {
      queue = new PriorityDeque<Item>(this.priorityOf);
      this.queues.set(owner, queue);
      this.ring.push(owner);
    }
    return queue;
  }

  private forget(owner: Owner): void {
    this.queues.delete(owner);
    const index = this.ring.indexOf(owner);
    if (index !== -1) {
      this.ring.splice(index, 1);
      if (index < this.cursor) this.cursor--;
    }
  }
}
