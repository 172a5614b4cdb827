/**
 * What the progress line shows: done/total, running, failed, elapsed and an ETA.
 *
 * The ETA is the work left divided by the parallelism seen so far (the most commands that ran
 * at once). Work left counts each command not yet finished at its expected duration: its
 * recorded one (--timings) or else the mean of the commands finished in this run, less the
 * time it has already run. There is no ETA until the total is known and every command left
 * has an expected duration.
 */
export class ProgressState {
  total: number | undefined;
  done = 0;
  failed = 0;
  private readonly started: number;
  /** Running commands: id -> when it started (ms). */
  private readonly running = new Map<number, number>();
  private readonly ever = new Set<number>();
  private peak = 0;
  /** Recorded durations of the commands not started yet, and how many have none. */
  private unstartedMs = 0;
  private unstartedUnknown = 0;
  private finishedMs = 0;
  private finished = 0;

  constructor(
    private readonly estimateOf: (id: number) => number | undefined = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  /** A command was read and will be submitted. */
  planned(id: number): void {
    const ms = this.estimateOf(id);
    if (ms === undefined) this.unstartedUnknown++;
    else this.unstartedMs += ms;
  }

  counted(total: number): void {
    this.total = total;
  }

  begin(id: number): void {
    if (!this.ever.has(id)) {
      this.ever.add(id);
      const ms = this.estimateOf(id);
      if (ms === undefined) this.unstartedUnknown--;
      else this.unstartedMs -= ms;
    }
    this.running.set(id, this.now());
    this.peak = Math.max(this.peak, this.running.size);
  }

  end(id: number, duration: number, failed: boolean): void {
    if (!this.ever.has(id)) this.begin(id); // its QUEUED may have been lost with a reconnect
    this.running.delete(id);
    this.ever.delete(id); // a result is final: no QUEUED for this id comes any more
    this.done++;
    if (failed) this.failed++;
    this.finished++;
    this.finishedMs += duration;
  }

  get runningCount(): number {
    return this.running.size;
  }

  elapsed(): number {
    return this.now() - this.started;
  }

  /** Milliseconds until the run should end, or undefined when there is no basis for a guess. */
  eta(): number | undefined {
    if (this.total === undefined) return undefined;
    if (this.done >= this.total) return 0;
    const mean = this.finished > 0 ? this.finishedMs / this.finished : undefined;
    if (this.unstartedUnknown > 0 && mean === undefined) return undefined;
    let work = this.unstartedMs + this.unstartedUnknown * (mean ?? 0);
    let longest = 0;
    const now = this.now();
    for (const [id, since] of this.running) {
      const expected = this.estimateOf(id) ?? mean;
      if (expected === undefined) return undefined;
      const left = Math.max(expected - (now - since), 0);
      work += left;
      longest = Math.max(longest, left);
    }
    return Math.max(work / Math.max(this.peak, 1), longest);
  }

  /** The status line's text: "[12/40] 4 running · 1 failed · 0:12 elapsed · ETA 0:30". */
  render(): string {
    const eta = this.eta();
    return [
      `[${this.done}/${this.total ?? '?'}]`,
      `${this.runningCount} running`,
      `${this.failed} failed`,
      `${clock(this.elapsed())} elapsed`,
      `ETA ${eta === undefined ? '?' : clock(eta)}`,
    ].join(' · ').replace(' · ', ' ');
  }
}

/** 0:07, 12:34, 1:02:03. */
export function clock(ms: number): string {
  const seconds = Math.max(Math.round(ms / 1000), 0);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
