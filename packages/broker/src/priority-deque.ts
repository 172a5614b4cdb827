import { Deque } from './deque.js';

interface Entry<T> {
  item: T;
  priority: number;
  /** Order within a priority: push counts up from 1, unshift counts down from 0. */
  seq: number;
}

/**
 * One client's pending jobs: higher priority first, first-in first-out within a priority, and
 * `unshift` puts an item first among those of its own priority (a job coming back from a worker).
 *
 * Items at priority 0, the default, live in a plain Deque, so a client that sends no priorities
 * pays O(1) per operation as before; the others live in a binary heap (O(log n)).
 */
export class PriorityDeque<T> {
  private readonly plain = new Deque<T>();
  private readonly heap: Array<Entry<T>> = [];
  private pushed = 0;
  private unshifted = 0;

  constructor(private readonly priorityOf: (item: T) => number) {}

  get length(): number {
    return this.plain.length + this.heap.length;
  }

  push(item: T): void {
    const priority = this.priorityOf(item);
    if (priority === 0) this.plain.push(item);
    else this.insert({ item, priority, seq: ++this.pushed });
  }

  unshift(item: T): void {
    const priority = this.priorityOf(item);
    if (priority === 0) this.plain.unshift(item);
    else this.insert({ item, priority, seq: -this.unshifted++ });
  }

  shift(): T | undefined {
    const top = this.heap[0];
    if (top !== undefined && (top.priority > 0 || this.plain.length === 0)) return this.pop();
    return this.plain.shift();
  }

  *drain(): Generator<T> {
    while (this.length > 0) yield this.shift()!;
  }

  private insert(entry: Entry<T>): void {
    const heap = this.heap;
    let i = heap.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): T {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
        if (!before(heap[child]!, last)) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top.item;
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}
