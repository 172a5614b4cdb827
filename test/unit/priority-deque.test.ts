import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../packages/broker/dist/fair-queue.js';
import { PriorityDeque } from '../../packages/broker/dist/priority-deque.js';

interface Job {
  name: string;
  priority: number;
}

const job = (name: string, priority = 0): Job => ({ name, priority });
const names = (items: Iterable<Job>) => [...items].map((item) => item.name);

describe('PriorityDeque', () => {
  it('takes higher priorities first and keeps submission order within a priority', () => {
    const queue = new PriorityDeque<Job>((j) => j.priority);
    for (const j of [job('a', 1), job('b', 5), job('c'), job('d', 5), job('e', 1), job('f', -2), job('g', 9)]) queue.push(j);
    expect(queue.length).toBe(7);
    expect(names(queue.drain())).toEqual(['g', 'b', 'd', 'a', 'e', 'c', 'f']);
    expect(queue.length).toBe(0);
  });

  it('puts an unshifted item first among its own priority, not ahead of higher ones', () => {
    const queue = new PriorityDeque<Job>((j) => j.priority);
    for (const j of [job('high', 9), job('x', 3), job('y', 3), job('plain')]) queue.push(j);
    queue.unshift(job('back', 3));
    queue.unshift(job('back-plain'));
    expect(names(queue.drain())).toEqual(['high', 'back', 'x', 'y', 'back-plain', 'plain']);
  });

  it('stays a plain FIFO when nothing has a priority', () => {
    const queue = new PriorityDeque<Job>((j) => j.priority);
    for (let i = 0; i < 1000; i++) queue.push(job(String(i)));
    queue.unshift(job('first'));
    expect(names(queue.drain())).toEqual(['first', ...Array.from({ length: 1000 }, (_, i) => String(i))]);
  });

  it('orders a large shuffled set exactly like a stable sort by descending priority', () => {
    const jobs = Array.from({ length: 2000 }, (_, i) => job(`j${i}`, (i * 7919) % 13));
    const queue = new PriorityDeque<Job>((j) => j.priority);
    for (const j of jobs) queue.push(j);
    const expected = [...jobs].sort((a, b) => b.priority - a.priority);
    expect(names(queue.drain())).toEqual(names(expected));
  });
});

describe('FairQueue with priorities', () => {
  it('honours each owner’s priorities while still taking owners round-robin', () => {
    const queue = new FairQueue<string, Job>((j) => j.priority);
    for (const j of [job('a-short', 1), job('a-long', 3), job('a-mid', 2)]) queue.push('a', j);
    for (const j of [job('b-low', 1), job('b-high', 2)]) queue.push('b', j);
    const taken: string[] = [];
    for (let item = queue.take(); item !== undefined; item = queue.take()) taken.push(item.name);
    expect(taken).toEqual(['a-long', 'b-high', 'a-mid', 'b-low', 'a-short']);
  });
});
