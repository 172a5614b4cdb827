import { describe, it, expect } from 'vitest';
// Internals of the broker, not part of its public entry point.
import { FairQueue } from '../../packages/broker/dist/fair-queue.js';
import { Deque } from '../../packages/broker/dist/deque.js';

function takeAll<O, I>(queue: FairQueue<O, I>): I[] {
  const out: I[] = [];
  for (let item = queue.take(); item !== undefined; item = queue.take()) out.push(item);
  return out;
}

function fill(queue: FairQueue<string, string>, owner: string, count: number): void {
  for (let i = 1; i <= count; i++) queue.push(owner, `${owner}${i}`);
}

describe('FairQueue', () => {
  it('takes items round-robin across owners, each owner in its own FIFO order', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 3);
    fill(queue, 'b', 2);
    fill(queue, 'c', 1);
    expect(queue.size).toBe(6);
    expect(takeAll(queue)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    expect(queue.size).toBe(0);
    expect(queue.take()).toBeUndefined();
  });

  it('serves an owner that arrives late before the rest of an earlier backlog', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 100);
    expect([queue.take(), queue.take()]).toEqual(['a1', 'a2']);
    fill(queue, 'b', 3);
    expect([queue.take(), queue.take(), queue.take(), queue.take(), queue.take(), queue.take()]).toEqual(['b1', 'a3', 'b2', 'a4', 'b3', 'a5']);
    expect(queue.sizeOf('a')).toBe(95);
    expect(queue.sizeOf('b')).toBe(0);
  });

  it('gives the next owner its turn when an owner runs out of items', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 1);
    fill(queue, 'b', 2);
    fill(queue, 'c', 2);
    expect(takeAll(queue)).toEqual(['a1', 'b1', 'c1', 'b2', 'c2']);
  });

  it('puts an unshifted item back at the front of its owner\'s queue', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 3);
    fill(queue, 'b', 2);
    expect(queue.take()).toBe('a1');
    queue.unshift('a', 'a1');
    expect(queue.size).toBe(5);
    expect(queue.sizeOf('a')).toBe(3);
    expect(takeAll(queue)).toEqual(['b1', 'a1', 'b2', 'a2', 'a3']);
  });

  it('takes an unshifted item back even when its owner had nothing left queued', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 1);
    expect(queue.take()).toBe('a1');
    expect(queue.size).toBe(0);
    queue.unshift('a', 'a1');
    expect(queue.size).toBe(1);
    expect(takeAll(queue)).toEqual(['a1']);
  });

  it('drops every pending item of a removed owner and returns them', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 3);
    fill(queue, 'b', 2);
    expect(queue.remove('a')).toEqual(['a1', 'a2', 'a3']);
    expect(queue.size).toBe(2);
    expect(queue.sizeOf('a')).toBe(0);
    expect(takeAll(queue)).toEqual(['b1', 'b2']);
    expect(queue.remove('a')).toEqual([]);
    expect(queue.remove('nobody')).toEqual([]);
  });

  it('does not skip the next owner\'s turn when an owner is removed', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 2);
    fill(queue, 'b', 2);
    fill(queue, 'c', 2);
    expect(queue.take()).toBe('a1');
    queue.remove('a');
    expect(takeAll(queue)).toEqual(['b1', 'c1', 'b2', 'c2']);

    fill(queue, 'a', 2);
    fill(queue, 'b', 2);
    fill(queue, 'c', 2);
    expect([queue.take(), queue.take()]).toEqual(['a1', 'b1']);
    queue.remove('c');
    expect(takeAll(queue)).toEqual(['a2', 'b2']);
  });

  it('lets a removed owner come back at the end of the rotation', () => {
    const queue = new FairQueue<string, string>();
    fill(queue, 'a', 2);
    fill(queue, 'b', 2);
    queue.remove('a');
    fill(queue, 'a', 2);
    expect(takeAll(queue)).toEqual(['b1', 'a1', 'b2', 'a2']);
  });
});

describe('Deque', () => {
  it('keeps FIFO order while growing far past its first capacity', () => {
    const deque = new Deque<number>();
    for (let i = 0; i < 1000; i++) deque.push(i);
    expect(deque.length).toBe(1000);
    const out: number[] = [];
    for (let item = deque.shift(); item !== undefined; item = deque.shift()) out.push(item);
    expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(deque.length).toBe(0);
  });

  it('grows correctly when its items wrap around the end of the buffer', () => {
    const deque = new Deque<number>();
    for (let i = 0; i < 12; i++) deque.push(i);
    for (let i = 0; i < 10; i++) expect(deque.shift()).toBe(i);
    // head is now near the end of the 16-slot buffer: these wrap, then force a grow
    for (let i = 12; i < 40; i++) deque.push(i);
    expect(deque.length).toBe(30);
    expect([...deque.drain()]).toEqual(Array.from({ length: 30 }, (_, i) => i + 10));
  });

  it('grows correctly when unshift fills it', () => {
    const deque = new Deque<number>();
    for (let i = 0; i < 5; i++) deque.push(i);
    for (let i = -1; i >= -40; i--) deque.unshift(i);
    expect(deque.length).toBe(45);
    expect([...deque.drain()]).toEqual(Array.from({ length: 45 }, (_, i) => i - 40));
  });

  it('mixes push, unshift and shift as a double-ended queue', () => {
    const deque = new Deque<string>();
    const model: string[] = [];
    for (let round = 0; round < 200; round++) {
      if (round % 3 === 0) {
        deque.unshift(`u${round}`);
        model.unshift(`u${round}`);
      } else {
        deque.push(`p${round}`);
        model.push(`p${round}`);
      }
      if (round % 5 === 4) expect(deque.shift()).toBe(model.shift());
      expect(deque.length).toBe(model.length);
    }
    expect([...deque.drain()]).toEqual(model);
  });

  it('returns undefined when empty', () => {
    const deque = new Deque<number>();
    expect(deque.shift()).toBeUndefined();
    deque.push(1);
    deque.shift();
    expect(deque.shift()).toBeUndefined();
    expect(deque.length).toBe(0);
  });
});
