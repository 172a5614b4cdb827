import { describe, expect, it } from 'vitest';
import { OrderedOutput } from '../../packages/client/dist/ordered-output.js';
import { jobResult } from '../helpers/job-result.js';

const result = (id: number) => jobResult({ id, cmd: `cmd ${id}` });

describe('OrderedOutput (--keep-order)', () => {
  it('releases results in id order, holding back the early ones', () => {
    const seen: number[] = [];
    const ordered = new OrderedOutput((r) => seen.push(r.id));
    ordered.add(result(2));
    ordered.add(result(1));
    expect(seen).toEqual([]);
    expect(ordered.waiting).toBe(2);
    ordered.add(result(0));
    expect(seen).toEqual([0, 1, 2]);
    ordered.add(result(1)); // a duplicate of a released one
    expect(seen).toEqual([0, 1, 2]);
  });

  it('flushes what is left, in order, when a halted run leaves gaps', () => {
    const seen: number[] = [];
    const ordered = new OrderedOutput((r) => seen.push(r.id));
    for (const id of [5, 3, 0]) ordered.add(result(id));
    ordered.flush();
    expect(seen).toEqual([0, 3, 5]);
  });
});
