/** A FIFO with O(1) push, shift and unshift: queues of a million jobs must not copy arrays. */
export class Deque<T> {
  private buffer: Array<T | undefined> = new Array(16);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.buffer.length) this.grow();
    this.buffer[(this.head + this.count) & (this.buffer.length - 1)] = item;
    this.count++;
  }

  unshift(item: T): void {
    if (this.count === this.buffer.length) this.grow();
    this.head = (this.head - 1) & (this.buffer.length - 1);
    this.buffer[this.head] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.buffer[this.head];
    this.buffer[this.head] = undefined;
    this.head = (this.head + 1) & (this.buffer.length - 1);
    this.count--;
    return item;
  }

  *drain(): Generator<T> {
    while (this.count > 0) yield this.shift()!;
  }

  private grow(): void {
    const size = this.buffer.length;
    const next = new Array<T | undefined>(size * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.buffer[(this.head + i) & (size - 1)];
    this.buffer = next;
    this.head = 0;
  }
}
