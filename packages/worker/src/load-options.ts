import { getPriority } from 'node:os';
import { parseDuration, type Logger } from '@testcloud/protocol';
import type { WorkerArgs } from './cli-options.js';
import { WorkerError } from './errors.js';
import { parseLimit, parseMemLimit, type LoadLimits } from './load-controller.js';
import { FileLoadSource, ProcLoadSource, checkReadingsFile, type LoadSource } from './load-readings.js';

/** The worker's options for protecting its host and recycling itself, checked and parsed. */
export interface HostOptions {
  limits: LoadLimits;
  source: LoadSource;
  /** Sampling interval, ms. */
  loadInterval: number;
  /** Added to the worker's own niceness for each command (undefined: run as the worker does). */
  niceIncrement?: number;
  maxJobs?: number;
  /** ms; the worker drains and exits once it has run this long. */
  maxRunningTime?: number;
}

type HostArgs = Pick<
  WorkerArgs,
  'maxLoad' | 'maxCpu' | 'minFreeMem' | 'pauseFreeMem' | 'killFreeMem' | 'loadInterval' | 'loadReadings' | 'nice' | 'maxJobs' | 'maxRunningTime'
>;

/** Checks the host options (so a supervisor fails before it starts anything) and builds them. */
export function hostOptionsFromArgs(args: HostArgs, log: Logger): HostOptions {
  const bad = (message: string) => new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', message);
  const limits: LoadLimits = {};
  const maxLoad = parseLimit(args.maxLoad, 'max-load');
  const maxCpu = parseLimit(args.maxCpu, 'max-cpu', 100);
  if (maxLoad !== undefined) limits.maxLoad = maxLoad;
  if (maxCpu !== undefined) limits.maxCpu = maxCpu;
  if (args.minFreeMem !== undefined) limits.minFreeMem = parseMemLimit(args.minFreeMem, 'min-free-mem');
  if (args.pauseFreeMem !== undefined) limits.pauseFreeMem = parseMemLimit(args.pauseFreeMem, 'pause-free-mem');
  if (args.killFreeMem !== undefined) limits.killFreeMem = parseMemLimit(args.killFreeMem, 'kill-free-mem');

  const loadInterval = parseDuration(args.loadInterval);
  if (!(loadInterval >= 10)) throw bad(`--load-interval must be at least 10ms, got "${args.loadInterval}"`);

  let source: LoadSource = new ProcLoadSource();
  if (args.loadReadings !== undefined) {
    try {
      checkReadingsFile(args.loadReadings);
    } catch (cause) {
      throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--load-readings ${args.loadReadings}: ${(cause as Error).message}`, { cause });
    }
    source = new FileLoadSource(args.loadReadings, (message) => log.limited('load-readings-file', message));
  }

  const options: HostOptions = { limits, source, loadInterval };
  if (args.nice !== undefined) {
    if (!Number.isInteger(args.nice) || args.nice < -20 || args.nice > 19) throw bad(`--nice takes a whole number from -20 to 19, got ${args.nice}`);
    const increment = args.nice - getPriority();
    // Only root may lower a niceness; `nice` would otherwise warn and run the job unchanged.
    if (increment < 0 && process.getuid?.() !== 0) {
      throw bad(`--nice ${args.nice} is below this worker's own niceness (${getPriority()}): only root can raise priority`);
    }
    if (increment !== 0) options.niceIncrement = increment;
  }
  if (args.maxJobs !== undefined) {
    if (!Number.isInteger(args.maxJobs) || args.maxJobs < 1) throw bad(`--max-jobs takes a whole number >= 1, got ${args.maxJobs}`);
    options.maxJobs = args.maxJobs;
  }
  if (args.maxRunningTime !== undefined) {
    const ms = parseDuration(args.maxRunningTime);
    if (!(ms > 0)) throw bad(`--max-running-time must be longer than 0, got "${args.maxRunningTime}"`);
    options.maxRunningTime = ms;
  }
  return options;
}
