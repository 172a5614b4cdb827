import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BrokerLink, type Message } from '@testcloud/protocol';
import { fileLines, lines, tempDir } from '../helpers/ci.js';
import { runClient, startBroker, startWorker } from '../helpers/processes.js';

const SLOTS = 2;
/** A skewed suite: six short commands, then three long ones (the worst input order for LPT's sake). */
const SUITE: Array<[name: string, seconds: number]> = [
  ...[1, 2, 3, 4, 5, 6].map((n): [string, number] => [`short-${n}`, 0.1]),
  // Long enough that a short command slowed by a busy machine (or a slot's first start) is
  // never mistaken for one of them; and of different lengths, so that no two of them end (and
  // let the next command start) at the same moment, when the order in which the two new
  // commands note their start would be a race.
  ['long-1', 0.8],
  ['long-2', 0.9],
  ['long-3', 1.0],
];
const NOMINAL = new Map(SUITE);

/** Each command notes its name in `started` as it starts, then works. */
function suite(dir: string): string {
  return lines(SUITE.map(([name, seconds]) => `echo ${name} >> ${join(dir, 'started')}; sleep ${seconds}`));
}

/**
 * The makespan of starting the commands in this order on SLOTS identical slots, each taking its
 * nominal time (list scheduling: the next command goes to the slot that frees first).
 */
function makespan(order: string[]): number {
  const free = Array<number>(SLOTS).fill(0);
  for (const name of order) {
    const slot = free.indexOf(Math.min(...free));
    free[slot]! += NOMINAL.get(name)!;
  }
  return Math.max(...free);
}

describe('--timings: longest first, from the durations of earlier runs', () => {
  it('starts the long commands first on the second run, bringing the makespan to the lower bound', async () => {
    const dir = tempDir();
    const timings = join(dir, 'timings.json');
    // --verbose: the embedded broker's and worker's logs, for the failure message below.
    const args = ['--local', String(SLOTS), '--timings', timings, '--quiet', '--verbose'];

    const first = await runClient(args, suite(dir));
    expect(first.code, first.proc.describe()).toBe(0);
    const firstOrder = fileLines(join(dir, 'started'));
    // No history: input order, so the long ones start last.
    expect(new Set(firstOrder.slice(-3))).toEqual(new Set(['long-1', 'long-2', 'long-3']));

    const second = await runClient(args, suite(dir));
    expect(second.code, second.proc.describe()).toBe(0);
    const secondOrder = fileLines(join(dir, 'started')).slice(SUITE.length);
    expect(new Set(secondOrder)).toEqual(new Set(SUITE.map(([name]) => name)));
    // Longest first: the two longest start together (in either order), then the third as soon
    // as the shorter of those ends. (On failure: both runs' start order and the second run's log.)
    const why = `${fileLines(join(dir, 'started')).join(' ')}\n${second.proc.describe()}`;
    expect(new Set(secondOrder.slice(0, 2)), why).toEqual(new Set(['long-3', 'long-2']));
    expect(secondOrder[2], why).toBe('long-1');

    const total = SUITE.reduce((sum, [, seconds]) => sum + seconds, 0);
    const bound = Math.max(...SUITE.map(([, seconds]) => seconds), total / SLOTS);
    expect(makespan(secondOrder)).toBeLessThan(makespan(firstOrder));
    expect(makespan(secondOrder) - bound).toBeLessThan((makespan(firstOrder) - bound) / 2);
  });
});

describe('the broker honours per-job priorities', () => {
  it('dispatches the queued commands of a client highest priority first, whatever the order they came in', async () => {
    const broker = await startBroker();
    await startWorker(broker.workers, ['--concurrency', '1']);
    const results: number[] = [];
    let session!: () => void;
    const ready = new Promise<void>((resolve) => (session = resolve));
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const link = new BrokerLink({
      endpoint: broker.clients,
      role: 'client',
      greeting: () => ({ type: 'hello', client: 'priority-test' }),
      onSession: () => session(),
      onMessage: (message: Message) => {
        if (message.type === 'result') results.push(...message.results.map((r) => r.id));
        if (results.length === 5) finished();
      },
    });
    onTestFinished(() => link.close('test over'));
    link.start();
    await ready;
    // One SUBMIT: the broker queues all five before its next dispatch, and the one slot takes them one by one.
    link.send({
      type: 'submit',
      jobs: [
        { id: 0, cmd: 'true', priority: 1 },
        { id: 1, cmd: 'true', priority: 5 },
        { id: 2, cmd: 'true' },
        { id: 3, cmd: 'true', priority: 9 },
        { id: 4, cmd: 'true', priority: 5 },
      ],
    });
    await done;
    // One slot: they end in the order they started.
    expect(results).toEqual([3, 1, 4, 0, 2]);
  });
});
