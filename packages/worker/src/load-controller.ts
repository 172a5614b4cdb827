import type { WorkerState } from '@testcloud/protocol';
import { WorkerError } from './errors.js';
import type { LoadReadings } from './load-readings.js';

/** A memory threshold, in MiB or as a percentage of MemTotal. */
export type MemLimit = { mib: number } | { percent: number };

export interface LoadLimits {
  /** Most 1-minute load average per CPU at which new jobs are taken (--max-load). */
  maxLoad?: number;
  /** Most CPU busy percent at which new jobs are taken (--max-cpu). */
  maxCpu?: number;
  /** Least free memory at which new jobs are taken (--min-free-mem). */
  minFreeMem?: MemLimit;
  /** Below this, running jobs are paused, newest first (--pause-free-mem). */
  pauseFreeMem?: MemLimit;
  /** Below this, the newest job is killed and handed back to the broker (--kill-free-mem). */
  killFreeMem?: MemLimit;
  /**
   * How far past a limit a reading must come back before what the limit caused ends, as a
   * fraction of the limit: with 0.1, a worker withheld at --max-load 2 offers slots again at
   * load 1.8, and jobs paused at --pause-free-mem 500 resume from 550 MiB free.
   */
  hysteresis?: number;
}

export const DEFAULT_HYSTERESIS = 0.1;

/** What the controller knows of a job: oldest first in the list it is given. */
export interface JobView {
  id: number;
  state: 'running' | 'paused' | 'stopping';
  /** False when the worker has no process group to signal (yet): such a job is never paused. */
  pausable: boolean;
}

/** What to do after one sample. Each list holds at most one job: the host gets time to respond. */
export interface Decision {
  /** Whether the worker offers its free slots to the broker. */
  admit: boolean;
  /** One phrase per limit that keeps slots withheld, for logs. */
  reasons: string[];
  pause: number[];
  resume: number[];
  kill: number[];
}

type LimitName = 'max-load' | 'max-cpu' | 'min-free-mem' | 'pause-free-mem' | 'kill-free-mem';

/**
 * The decisions of a worker that protects its host, as a pure function of readings, limits and
 * the jobs it runs (no timers, no signals: load-guard.ts applies them).
 *
 * - Admission: while any limit is crossed, or a job is paused or being killed, no new job.
 *   A crossed limit stays crossed until its reading comes back past it by the hysteresis.
 * - Pause: below --pause-free-mem, pause the newest running job, one per sample, until memory
 *   recovers past the hysteresis band; then resume the oldest paused job, one per sample.
 * - Kill: below --kill-free-mem, kill the newest job (running or paused), one at a time: the
 *   next only once the previous has exited and memory is still short.
 */
export class LoadController {
  private readonly crossed = new Set<LimitName>();
  private readonly hysteresis: number;

  constructor(readonly limits: LoadLimits) {
    this.hysteresis = limits.hysteresis ?? DEFAULT_HYSTERESIS;
  }

  /** True when any limit is set; without one the worker need not sample at all. */
  get active(): boolean {
    const l = this.limits;
    return [l.maxLoad, l.maxCpu, l.minFreeMem, l.pauseFreeMem, l.killFreeMem].some((limit) => limit !== undefined);
  }

  decide(readings: LoadReadings, jobs: readonly JobView[]): Decision {
    const h = this.hysteresis;
    const reasons: string[] = [];
    const above = (name: LimitName, label: string, value: number, limit: number | undefined, show: (n: number) => string) => {
      if (limit === undefined) return;
      if (value > limit) this.crossed.add(name);
      else if (value <= limit * (1 - h)) this.crossed.delete(name);
      if (this.crossed.has(name)) reasons.push(`${label} ${show(value)} over --${name} ${limit} (until ${show(limit * (1 - h))})`);
    };
    const below = (name: LimitName, limit: MemLimit | undefined) => {
      if (limit === undefined) return;
      const mib = memLimitMiB(limit, readings.totalMem);
      if (readings.freeMem < mib) this.crossed.add(name);
      else if (readings.freeMem >= mib * (1 + h)) this.crossed.delete(name);
      if (this.crossed.has(name)) reasons.push(`free memory ${mebibytes(readings.freeMem)} under --${name} ${mebibytes(mib)} (until ${mebibytes(mib * (1 + h))})`);
    };
    above('max-load', 'load', readings.load, this.limits.maxLoad, (n) => n.toFixed(2));
    above('max-cpu', 'cpu', readings.cpu, this.limits.maxCpu, (n) => `${Math.round(n)}%`);
    below('min-free-mem', this.limits.minFreeMem);
    below('pause-free-mem', this.limits.pauseFreeMem);
    below('kill-free-mem', this.limits.killFreeMem);

    const decision: Decision = { admit: true, reasons, pause: [], resume: [], kill: [] };
    const newestFirst = [...jobs].reverse();
    const killLimit = this.limits.killFreeMem;
    if (killLimit !== undefined && readings.freeMem < memLimitMiB(killLimit, readings.totalMem) && !jobs.some((j) => j.state === 'stopping')) {
      const victim = newestFirst.find((j) => j.state !== 'stopping');
      if (victim) decision.kill.push(victim.id);
    }
    const pauseLimit = this.limits.pauseFreeMem;
    if (pauseLimit !== undefined && this.crossed.has('pause-free-mem')) {
      // Inside the hysteresis band nothing changes: paused jobs stay paused, running ones run.
      if (readings.freeMem < memLimitMiB(pauseLimit, readings.totalMem)) {
        const victim = newestFirst.find((j) => j.state === 'running' && j.pausable && !decision.kill.includes(j.id));
        if (victim) decision.pause.push(victim.id);
      }
    } else {
      const oldestPaused = jobs.find((j) => j.state === 'paused' && !decision.kill.includes(j.id));
      if (oldestPaused) decision.resume.push(oldestPaused.id);
    }
    const pausedAfter = jobs.filter((j) => (j.state === 'paused' || decision.pause.includes(j.id)) && !decision.resume.includes(j.id)).length;
    if (pausedAfter > 0) reasons.push(`${pausedAfter} job(s) paused for memory`);
    if (jobs.some((j) => j.state === 'stopping') || decision.kill.length > 0) reasons.push('a job is being killed for memory');
    decision.admit = reasons.length === 0;
    return decision;
  }
}

export function memLimitMiB(limit: MemLimit, totalMem: number): number {
  return 'mib' in limit ? limit.mib : (limit.percent / 100) * totalMem;
}

function mebibytes(n: number): string {
  return `${Math.round(n)} MiB`;
}

const MEM_UNITS: Record<string, number> = { '': 1, k: 1 / 1024, kb: 1 / 1024, kib: 1 / 1024, m: 1, mb: 1, mib: 1, g: 1024, gb: 1024, gib: 1024, t: 1024 ** 2, tb: 1024 ** 2, tib: 1024 ** 2 };

/** "512" or "512MiB" (a bare number is MiB), "2GiB", or "10%" of MemTotal. */
export function parseMemLimit(text: string, option: string): MemLimit {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(%|[a-z]*)\s*$/i.exec(text);
  const unit = match?.[2]?.toLowerCase() ?? '';
  if (match && unit === '%' && Number(match[1]) <= 100) return { percent: Number(match[1]) };
  if (match && unit !== '%' && MEM_UNITS[unit] !== undefined) return { mib: Number(match[1]) * MEM_UNITS[unit]! };
  throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--${option} takes MiB (512, 2GiB) or a percentage of memory (10%), got "${text}"`);
}

/** A positive number for --max-load / --max-cpu. */
export function parseLimit(value: number | undefined, option: string, max = Infinity): number | undefined {
  if (value === undefined) return undefined;
  if (!(typeof value === 'number' && value > 0 && value <= max)) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--${option} takes a number > 0${max < Infinity ? ` and <= ${max}` : ''}, got ${String(value)}`);
  }
  return value;
}

/** The state a worker reports: the most telling of what is true of it right now. */
export function workerStateOf(s: { draining: boolean; paused: number; admit: boolean; running: number; slots: number }): WorkerState {
  if (s.draining) return 'draining';
  if (s.paused > 0) return 'paused';
  if (!s.admit) return 'withheld';
  if (s.running >= s.slots) return 'saturated';
  return s.running > 0 ? 'busy' : 'idle';
}
