import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';

/** One sample of the host's state, as the load controller sees it. */
export interface LoadReadings {
  /** 1-minute load average divided by the number of CPUs (1 = every CPU has one runnable task). */
  load: number;
  /** Percent of CPU time busy (not idle, not waiting for I/O) over the last few seconds. */
  cpu: number;
  /** MemAvailable in MiB: what can be had without swapping. */
  freeMem: number;
  /** MemTotal in MiB, for limits given as a percentage. */
  totalMem: number;
}

/** Where readings come from: /proc on a real host, a file or a fake in tests. */
export interface LoadSource {
  read(): Promise<LoadReadings>;
}

const MIB = 1024 * 1024;

/** The readings of a host with nothing to do: what a file-fed source reports for a field it lacks. */
export function idleReadings(): LoadReadings {
  const total = Math.round(totalmem() / MIB);
  return { load: 0, cpu: 0, freeMem: total, totalMem: total };
}

interface CpuSample {
  at: number;
  busy: number;
  total: number;
}

/**
 * Reads Linux's /proc: load from /proc/loadavg (via os.loadavg), memory from /proc/meminfo, and
 * CPU busy time as the difference between two /proc/stat samples `window` ms apart (the oldest
 * sample kept younger than the window), so one busy instant does not read as a busy host.
 */
export class ProcLoadSource implements LoadSource {
  private samples: CpuSample[] = [];

  constructor(
    private readonly window = 5000,
    private readonly root = '/proc',
  ) {}

  /**
   * Synchronous reads: /proc answers from memory in microseconds, where readFile's round trips
   * through the thread pool delayed a starting worker's READY (it waits for the first sample)
   * by several ms while the event loop was busy.
   */
  async read(): Promise<LoadReadings> {
    const mem = parseMeminfo(readFileSync(`${this.root}/meminfo`, 'utf8'));
    const stat = readFileSync(`${this.root}/stat`, 'utf8');
    return { load: loadavg()[0]! / Math.max(1, cpus().length), cpu: this.cpuPercent(parseCpuLine(stat)), ...mem };
  }

  private cpuPercent(sample: CpuSample): number {
    // Keep one sample at least `window` old as the base; drop the ones older than that.
    while (this.samples.length > 1 && sample.at - this.samples[1]!.at >= this.window) this.samples.shift();
    const base = this.samples[0];
    this.samples.push(sample);
    // The very first reading has no base: use the counters since boot.
    const busy = base ? sample.busy - base.busy : sample.busy;
    const total = base ? sample.total - base.total : sample.total;
    return total > 0 ? Math.min(100, Math.max(0, (busy / total) * 100)) : 0;
  }
}

/** The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal … */
export function parseCpuLine(stat: string): CpuSample {
  const line = stat.split('\n', 1)[0] ?? '';
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (!line.startsWith('cpu ') || fields.length < 4 || fields.some((n) => !Number.isFinite(n))) {
    throw new Error(`unexpected /proc/stat first line: ${JSON.stringify(line)}`);
  }
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + (fields[4] ?? 0);
  return { at: Date.now(), busy: total - idle, total };
}

export function parseMeminfo(text: string): { freeMem: number; totalMem: number } {
  const kib = (key: string): number | undefined => {
    const match = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const total = kib('MemTotal');
  // Kernels before 3.14 have no MemAvailable; free + page cache is its old approximation.
  const available = kib('MemAvailable') ?? (kib('MemFree') ?? 0) + (kib('Cached') ?? 0);
  if (total === undefined) throw new Error('no MemTotal in /proc/meminfo');
  return { freeMem: available / 1024, totalMem: total / 1024 };
}

/**
 * Readings scripted in a JSON file (`--load-readings FILE`), re-read on every sample, so an
 * end-to-end test can make a worker overloaded or short of memory and then well again:
 *
 *     {"load": 3.5, "cpu": 20, "freeMem": 80, "totalMem": 4096}
 *
 * A field the file leaves out reads as an idle host (no load, all memory free). A file that
 * is missing or not valid JSON keeps the last good readings and is reported to `onError`;
 * writers should replace it atomically (write a temporary file, then rename it).
 */
export class FileLoadSource implements LoadSource {
  private last: LoadReadings = idleReadings();

  constructor(
    readonly path: string,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  async read(): Promise<LoadReadings> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      this.onError(`cannot read load readings from ${this.path}: ${(error as Error).message}`);
      return this.last;
    }
    try {
      this.last = parseReadings(text, idleReadings());
    } catch (error) {
      this.onError(`bad load readings in ${this.path}: ${(error as Error).message}`);
    }
    return this.last;
  }
}

/** A JSON object of readings over `defaults`; throws on anything but finite, non-negative numbers. */
export function parseReadings(text: string, defaults: LoadReadings): LoadReadings {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a JSON object');
  const readings = { ...defaults };
  for (const key of ['load', 'cpu', 'freeMem', 'totalMem'] as const) {
    const field = (value as Record<string, unknown>)[key];
    if (field === undefined) continue;
    if (typeof field !== 'number' || !Number.isFinite(field) || field < 0) throw new Error(`${key} must be a non-negative number`);
    readings[key] = field;
  }
  if (readings.freeMem > readings.totalMem) readings.totalMem = readings.freeMem;
  return readings;
}

/** Checks at startup that a readings file exists and parses, so a typo fails fast. */
export function checkReadingsFile(path: string): void {
  parseReadings(readFileSync(path, 'utf8'), idleReadings());
}
