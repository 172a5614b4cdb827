import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { JobResult } from '@testcloud/protocol';

/**
 * `--timings FILE`: how long each command took in earlier runs, as an exponential moving
 * average, so the next run can start the longest commands first.
 *
 * The file is JSON, keyed by the exact command line:
 *
 *   {"version": 1, "run": 12, "commands": {"npm test -- a.test.js": {"ms": 5321.4, "runs": 7, "seen": 12}}}
 *
 * `run` counts the runs that saved the file and `seen` is the last run a command was in;
 * commands not seen for STALE_AFTER runs are dropped, so renamed tests do not pile up.
 */
export const ALPHA = 0.5;
export const STALE_AFTER = 50;
const VERSION = 1;

interface Entry {
  /** The moving average of the command's duration, in ms. */
  ms: number;
  runs: number;
  seen: number;
}

export class Timings {
  private run: number;
  private readonly entries: Map<string, Entry>;
  private changed = false;

  private constructor(run: number, entries: Map<string, Entry>) {
    this.run = run;
    this.entries = entries;
  }

  /** An empty history. */
  static empty(): Timings {
    return new Timings(0, new Map());
  }

  /**
   * Reads FILE. A missing file is an empty history (the first run); an unreadable or malformed
   * one is too, and `warn` says why: a CI job should not fail over a stale cache.
   */
  static load(file: string, warn: (message: string) => void = () => {}): Timings {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read the timings file ${file} (${(error as Error).message}); starting without history`);
      return Timings.empty();
    }
    try {
      return Timings.parse(JSON.parse(text));
    } catch (error) {
      warn(`ignoring the timings file ${file}: ${(error as Error).message}`);
      return Timings.empty();
    }
  }

  static parse(data: unknown): Timings {
    const doc = data as { version?: unknown; run?: unknown; commands?: unknown };
    if (typeof doc !== 'object' || doc === null || doc.version !== VERSION) throw new Error(`not a version ${VERSION} timings file`);
    const run = Number.isSafeInteger(doc.run) ? (doc.run as number) : 0;
    const entries = new Map<string, Entry>();
    if (typeof doc.commands === 'object' && doc.commands !== null) {
      for (const [cmd, value] of Object.entries(doc.commands)) {
        const { ms, runs, seen } = (value ?? {}) as Partial<Entry>;
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) continue;
        entries.set(cmd, { ms, runs: Number.isSafeInteger(runs) ? runs! : 1, seen: Number.isSafeInteger(seen) ? seen! : run });
      }
    }
    return new Timings(run, entries);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The expected duration of a command in ms, or undefined when it has no history. */
  estimate(cmd: string): number | undefined {
    return this.entries.get(cmd)?.ms;
  }

  /**
   * Folds a finished command into the history. Commands that were cancelled, lost or could not
   * start say nothing about their duration and are skipped; failures and timeouts count (a
   * failing test takes its time in the next run too, and a timeout is at least that long).
   */
  record(result: Pick<JobResult, 'cmd' | 'duration' | 'stopped' | 'error' | 'exitcode' | 'signal'>): void {
    if (result.stopped === 'cancelled' || result.stopped === 'lost') return;
    if (result.error !== null && result.exitcode === null && result.signal === null) return;
    const previous = this.entries.get(result.cmd);
    const seen = this.run + 1;
    if (previous === undefined) this.entries.set(result.cmd, { ms: result.duration, runs: 1, seen });
    else this.entries.set(result.cmd, { ms: previous.ms + ALPHA * (result.duration - previous.ms), runs: previous.runs + 1, seen });
    this.changed = true;
  }

  toJSON(): { version: number; run: number; commands: Record<string, Entry> } {
    const run = this.run + (this.changed ? 1 : 0);
    const commands = Object.create(null) as Record<string, Entry>; // a command may be called __proto__
    for (const [cmd, entry] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (run - entry.seen >= STALE_AFTER) continue;
      commands[cmd] = { ms: Math.round(entry.ms * 10) / 10, runs: entry.runs, seen: entry.seen };
    }
    return { version: VERSION, run, commands };
  }

  /** Writes the history to FILE atomically (a temporary file renamed over it), if anything was recorded. */
  save(file: string): boolean {
    if (!this.changed) return false;
    mkdirSync(dirname(file), { recursive: true }); // a cache directory that CI has not restored yet
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, formatTimings(this.toJSON()));
    renameSync(temporary, file);
    return true;
  }
}

/** JSON with one command per line, so a cached file diffs readably. */
function formatTimings(doc: ReturnType<Timings['toJSON']>): string {
  const lines = Object.entries(doc.commands).map(([cmd, entry]) => `  ${JSON.stringify(cmd)}: ${JSON.stringify(entry)}`);
  return `{"version": ${doc.version}, "run": ${doc.run}, "commands": {\n${lines.join(',\n')}\n}}\n`;
}
