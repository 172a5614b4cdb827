import type { LoadReport, Logger } from '@testcloud/protocol';
import { LoadController, type JobView, type LoadLimits } from './load-controller.js';
import type { LoadReadings, LoadSource } from './load-readings.js';
import type { PauseSignal } from './executor.js';
import { PauseController, pauseGroup, resumeGroup } from './process-group.js';

export interface LoadGuardOptions {
  source: LoadSource;
  limits: LoadLimits;
  /** Time between samples, in ms. */
  interval: number;
  logger: Logger;
  /** Stop a job for memory (SIGTERM, grace, SIGKILL); the worker hands it back when it has exited. */
  kill(id: number, reason: string): void;
  /** Admission or pausing changed: the broker should hear the worker's new state now. */
  onChange(): void;
}

interface GuardedJob {
  id: number;
  pid: number | undefined;
  /** Running, not waiting in a queue. */
  started: boolean;
  state: JobView['state'];
  pausedAt: number | undefined;
  pausedMs: number;
  killedFor: string | undefined;
  /** Tells the job's executor when its group is stopped, so that its timeouts stop counting. */
  pauses: PauseController;
}

/**
 * Applies the load controller's decisions to a worker's jobs: samples the host every
 * `interval` ms, pauses and resumes process groups, asks the worker to kill jobs, and says
 * whether the worker takes new jobs. The worker tells it when each job starts, when its
 * process exists, and when it ends.
 */
export class LoadGuard {
  private readonly controller: LoadController;
  private readonly jobs = new Map<number, GuardedJob>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private last: LoadReadings | undefined;
  private admit = true;
  private reasons = '';

  constructor(private readonly options: LoadGuardOptions) {
    this.controller = new LoadController(options.limits);
  }

  /** Whether the worker offers its free slots (no limit crossed, nothing paused or being killed). */
  get admitting(): boolean {
    return this.admit;
  }

  /** Why slots are withheld, for logs and for jobs handed back unrun. */
  get withheldBecause(): string {
    return this.reasons;
  }

  get pausedCount(): number {
    let paused = 0;
    for (const job of this.jobs.values()) if (job.state === 'paused') paused++;
    return paused;
  }

  /** The latest readings, as heartbeats carry them (undefined before the first sample). */
  report(): LoadReport | undefined {
    if (!this.last) return undefined;
    const { load, cpu, freeMem } = this.last;
    return { load: round(load, 2), cpu: round(cpu, 1), freeMem: Math.round(freeMem) };
  }

  /** Takes the first sample (so a worker starting on an overloaded host never offers a slot) and keeps sampling. */
  async start(): Promise<void> {
    await this.sample();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * A job was accepted; jobs tracked later are newer. Returns the job's pause signal, for its
   * executor (ExecRequest.pauses): it changes as the guard stops and resumes the job's group.
   */
  track(id: number): PauseSignal {
    const pauses = new PauseController();
    this.jobs.set(id, { id, pid: undefined, started: false, state: 'running', pausedAt: undefined, pausedMs: 0, killedFor: undefined, pauses });
    return pauses;
  }

  /** The job runs (it has left every queue): from now on it uses the host and may be killed for memory. */
  started(id: number): void {
    const job = this.jobs.get(id);
    if (job) job.started = true;
  }

  /** The job's process group exists and can be paused. */
  spawned(id: number, pid: number): void {
    const job = this.jobs.get(id);
    if (job) job.pid = pid;
  }

  /** The job has ended: how long it spent paused (ms), and why it was killed for memory, if it was. */
  release(id: number): { paused: number; killedFor: string | undefined } {
    const job = this.jobs.get(id);
    if (!job) return { paused: 0, killedFor: undefined };
    this.jobs.delete(id);
    // Admission follows at the next sample, on readings that show what the job's end freed.
    if (job.pausedAt !== undefined) job.pausedMs += Date.now() - job.pausedAt;
    return { paused: Math.round(job.pausedMs), killedFor: job.killedFor };
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.sample().finally(() => this.schedule());
    }, this.options.interval);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    try {
      this.last = await this.options.source.read();
    } catch (error) {
      this.options.logger.limited('load-readings', `cannot read the host's load: ${(error as Error).message}`);
      return;
    }
    if (this.stopped) return;
    this.apply();
  }

  private apply(): void {
    const readings = this.last!;
    // A job still queued uses nothing: killing it would free no memory.
    const views: JobView[] = [...this.jobs.values()].filter((j) => j.started).map((j) => ({ id: j.id, state: j.state, pausable: j.pid !== undefined }));
    const decision = this.controller.decide(readings, views);
    const log = this.options.logger;
    const mem = `${Math.round(readings.freeMem)} MiB free`;
    for (const id of decision.kill) {
      const job = this.jobs.get(id)!;
      job.state = 'stopping';
      job.killedFor = `killed for memory (${mem}, --kill-free-mem)`;
      log.info(`memory is short (${mem}): killing job ${id}, the newest, to run it elsewhere`);
      this.options.kill(id, job.killedFor);
    }
    for (const id of decision.pause) {
      const job = this.jobs.get(id)!;
      pauseGroup(job.pid!);
      job.pauses.pause();
      job.state = 'paused';
      job.pausedAt = Date.now();
      log.info(`memory is short (${mem}): paused job ${id} (pid ${job.pid})`);
    }
    for (const id of decision.resume) {
      const job = this.jobs.get(id)!;
      resumeGroup(job.pid!);
      job.pauses.resume();
      job.state = 'running';
      job.pausedMs += Date.now() - job.pausedAt!;
      job.pausedAt = undefined;
      log.info(`memory has recovered (${mem}): resumed job ${id} (pid ${job.pid}) after ${job.pausedMs} ms paused`);
    }
    const reasons = decision.reasons.join('; ');
    const changed = decision.admit !== this.admit || decision.pause.length + decision.resume.length + decision.kill.length > 0;
    if (decision.admit !== this.admit) log.info(decision.admit ? 'load is back within limits: offering slots again' : `withholding slots: ${reasons}`);
    this.admit = decision.admit;
    this.reasons = reasons;
    if (changed) this.options.onChange();
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
