import { describe, expect, it } from 'vitest';
import { ProgressState, clock } from '../../packages/client/dist/progress-state.js';

function fakeClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('ProgressState (the status line)', () => {
  it('counts done, running and failed, and renders them', () => {
    const time = fakeClock();
    const state = new ProgressState(() => undefined, time.now);
    for (const id of [0, 1, 2]) state.planned(id);
    expect(state.render()).toBe('[0/?] 0 running · 0 failed · 0:00 elapsed · ETA ?');
    state.counted(3);
    state.begin(0);
    state.begin(1);
    time.advance(65_000);
    state.end(0, 65_000, true);
    expect(state.render()).toMatch(/^\[1\/3\] 1 running · 1 failed · 1:05 elapsed · ETA \S+$/);
  });

  it('estimates the time left from recorded durations over the parallelism seen', () => {
    const time = fakeClock();
    const recorded = [40_000, 20_000, 20_000, 10_000];
    const state = new ProgressState((id) => recorded[id], time.now);
    recorded.forEach((_, id) => state.planned(id));
    state.counted(4);
    state.begin(0);
    state.begin(1);
    time.advance(10_000);
    // Left: 30s of #0, 10s of #1, 20s + 10s unstarted = 70s of work over 2 slots, but #0 alone needs 30s.
    expect(state.eta()).toBe(35_000);
    time.advance(10_000);
    state.end(1, 20_000, false);
    state.begin(2);
    // Left: 20s of #0, 20s of #2, 10s of #3 = 50s over 2.
    expect(state.eta()).toBe(25_000);
  });

  it('falls back on the mean duration of this run for commands without history, and has no ETA before that', () => {
    const time = fakeClock();
    const state = new ProgressState(() => undefined, time.now);
    [0, 1, 2].forEach((id) => state.planned(id));
    state.counted(3);
    state.begin(0);
    expect(state.eta()).toBeUndefined();
    time.advance(4000);
    state.end(0, 4000, false);
    state.begin(1);
    expect(state.eta()).toBe(8000);
  });

  it('formats clocks as m:ss and h:mm:ss', () => {
    expect([clock(0), clock(7_400), clock(754_000), clock(3_723_000)]).toEqual(['0:00', '0:07', '12:34', '1:02:03']);
  });
});
