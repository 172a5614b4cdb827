import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PauseController, StopWatch } from '../../packages/worker/dist/process-group.js';

type Limits = ConstructorParameters<typeof StopWatch>[0];

/**
 * A StopWatch on fake timers, its clock the faked Date.now(), so time passes only through
 * vi.advanceTimersByTime: `stops` lists the grace of each call to stop the command.
 */
function watch(limits: Limits): { watch: StopWatch; stops: number[] } {
  const stops: number[] = [];
  const created = new StopWatch({ killGrace: 2000, ...limits }, (grace) => stops.push(grace), () => Date.now());
  return { watch: created, stops };
}

describe('StopWatch: time paused by the memory guard does not count', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stops a command at its timeout of running time, however long it was paused in between', () => {
    const { watch: w, stops } = watch({ timeout: 1000 });
    vi.advanceTimersByTime(400);
    w.pause();
    vi.advanceTimersByTime(60_000);
    expect(w.stopped).toBeNull();
    w.resume();
    vi.advanceTimersByTime(599);
    expect(w.stopped).toBeNull();
    vi.advanceTimersByTime(1);
    expect(w.stopped).toBe('timeout');
    expect(stops).toEqual([2000]);
  });

  it('adds up the running time between several pauses', () => {
    const { watch: w } = watch({ timeout: 1000 });
    for (const ran of [300, 250, 200]) {
      vi.advanceTimersByTime(ran);
      w.pause();
      vi.advanceTimersByTime(5000);
      w.resume();
    }
    vi.advanceTimersByTime(249);
    expect(w.stopped).toBeNull();
    vi.advanceTimersByTime(1);
    expect(w.stopped).toBe('timeout');
  });

  it('stops a command paused just as its time ran out the moment it resumes', () => {
    const { watch: w, stops } = watch({ timeout: 1000 });
    // The timer is due but has not fired: the pause comes first.
    vi.setSystemTime(Date.now() + 1000);
    w.pause();
    vi.advanceTimersByTime(5000);
    expect(stops).toEqual([]);
    w.resume();
    vi.advanceTimersByTime(0);
    expect(w.stopped).toBe('timeout');
  });

  it('starts the whole silence window again on resume, and ignores output read while paused', () => {
    const { watch: w } = watch({ idleTimeout: 500 });
    vi.advanceTimersByTime(450);
    w.pause();
    w.activity(); // what the command wrote before it stopped, read late
    vi.advanceTimersByTime(60_000);
    expect(w.stopped).toBeNull();
    w.resume();
    vi.advanceTimersByTime(499);
    expect(w.stopped).toBeNull();
    vi.advanceTimersByTime(1);
    expect(w.stopped).toBe('idle-timeout');
  });

  it('keeps both limits apart: the wall-clock one goes on, the silence one starts again', () => {
    const { watch: w } = watch({ timeout: 1000, idleTimeout: 600 });
    vi.advanceTimersByTime(500);
    w.pause();
    vi.advanceTimersByTime(10_000);
    w.resume();
    // 500 ms of running time left on the wall clock, 600 ms of silence allowed.
    vi.advanceTimersByTime(499);
    expect(w.stopped).toBeNull();
    vi.advanceTimersByTime(1);
    expect(w.stopped).toBe('timeout');
  });

  it('follows a PauseSignal, including one already paused when the command starts, until disposed', () => {
    const pauses = new PauseController();
    pauses.pause();
    const { watch: w } = watch({ timeout: 1000, pauses });
    vi.advanceTimersByTime(5000);
    expect(w.stopped).toBeNull();
    pauses.resume();
    vi.advanceTimersByTime(700);
    pauses.pause();
    vi.advanceTimersByTime(5000);
    expect(w.stopped).toBeNull();
    pauses.resume();
    vi.advanceTimersByTime(300);
    expect(w.stopped).toBe('timeout');

    const later = new PauseController();
    const { watch: ended, stops } = watch({ timeout: 1000, idleTimeout: 500, pauses: later });
    ended.dispose();
    later.pause();
    later.resume();
    vi.advanceTimersByTime(5000);
    expect(stops).toEqual([]);
  });

  it('stops a paused command at once when it is cancelled (or killed for memory)', () => {
    const controller = new AbortController();
    const pauses = new PauseController();
    const { watch: w, stops } = watch({ timeout: 1000, idleTimeout: 500, signal: controller.signal, pauses });
    vi.advanceTimersByTime(100);
    pauses.pause();
    controller.abort();
    expect(w.stopped).toBe('cancelled');
    expect(stops).toEqual([500]);
    pauses.resume();
    vi.advanceTimersByTime(5000);
    expect(stops).toEqual([500]);
  });

  it('runs the limits as before for a command never paused', () => {
    const { watch: w, stops } = watch({ timeout: 1000, idleTimeout: 400 });
    vi.advanceTimersByTime(300);
    w.activity();
    vi.advanceTimersByTime(300);
    w.activity();
    vi.advanceTimersByTime(300);
    expect(w.stopped).toBeNull();
    vi.advanceTimersByTime(100);
    expect(w.stopped).toBe('timeout');
    expect(stops).toEqual([2000]);
  });
});
