import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  BrokerLink,
  DEFAULT_MAX_MESSAGE_SIZE,
  createLogger,
  encodeStream,
  type JobRef,
  type JobResult,
  type JobSpec,
  type Logger,
  type Message,
  type MessageOfType,
  type Session,
  assertNever,
  type CurveSettings,
} from '@testcloud/protocol';
import { Cancel } from './cancel.js';
import { GroupReaper } from './group-reaper.js';
import { ExecaExecutor } from './execa-executor.js';
import type { ExecOutcome, Executor, PauseSignal } from './executor.js';
import { notStarted } from './exec-outcome.js';
import { jobDirectory, refusingExecutor } from './job-dir.js';
import { workerStateOf } from './load-controller.js';
import { LoadGuard } from './load-guard.js';
import type { HostOptions } from './load-options.js';
import { ProcLoadSource } from './load-readings.js';
import { niceCommand } from './process-group.js';

export interface WorkerOptions {
  /** The broker's worker endpoint, e.g. tcp://127.0.0.1:2225. */
  broker: string;
  /** Jobs run at once. */
  slots: number;
  /** Directory commands run in. */
  cwd?: string;
  /** Bytes kept per output stream of each job. */
  maxOutput?: number;
  /** Identity shown in results and broker logs; defaults to host:pid. */
  name?: string;
  /** Preference the broker gives this worker over others with as many free slots. */
  weight?: number;
  /**
   * Jobs taken beyond `slots` while jobs are short, each started the moment a slot frees rather
   * than a round trip to the broker later (default: PREFETCH_PER_SLOT per slot; 0 = none).
   */
  prefetch?: number;
  executor?: Executor;
  maxMessageSize?: number;
  /** Heartbeat interval until the broker announces its own (ms) and missed beats tolerated. */
  heartbeat?: number;
  liveness?: number;
  /** CURVE: our key pair and the broker's public key. */
  curve?: CurveSettings;
  /** Load limits, memory guard, niceness and recycling (see load-options.ts); none by default. */
  host?: Partial<HostOptions>;
  logger?: Logger;
}

export const DEFAULT_MAX_OUTPUT = 1024 * 1024;

/**
 * Prefetch pays only when a job is short next to the broker round trip it saves; a job that
 * waits behind a long one might have run at once on another worker. So the worker offers its
 * prefetch while the running average of its jobs' durations is under PREFETCH_ON ms and
 * withdraws it above PREFETCH_OFF (a band, so that it does not flap).
 */
const PREFETCH_ON = 50;
const PREFETCH_OFF = 200;
/**
 * Default prefetch: enough that results may travel in batches (see COALESCE) and the executor's
 * queue rarely runs dry between two of them (with 4, Python found a slot free and nothing queued
 * ~20-50 times in 2000 x `true`; 8 took that run from ~1.47x to ~1.41x xargs, 15 interleaved runs
 * twice). At under 50 ms a job it is at most 0.4 s of work per slot.
 */
export const PREFETCH_PER_SLOT = 8;
/**
 * QUEUED waits this long: a job that has ended by then is confirmed by its RESULT alone, which
 * saves a message each way for every short job (the broker's --ack-timeout is at least 100 ms).
 */
const CONFIRM_AFTER = 10;
/** How long a result may wait for others while the worker has more jobs lined up; see scheduleFlush. */
const COALESCE = 1;

interface RunningJob {
  spec: JobSpec;
  cancel: Cancel;
  /** The session the job was received in; results of an older session are stale. */
  session: number;
  /** Running: it has left every queue (the executor's onStart). QUEUED says so to the broker. */
  started: boolean;
  /** Taken back before it started (draining, or slots withheld): it ends in REQUEUE, not RESULT. */
  handBack: string | undefined;
  /** The memory guard's word on whether the job is paused: its timeouts do not count that time. */
  pauses: PauseSignal;
}

/**
 * A worker: says READY to a broker, runs the JOBs it is sent (QUEUED when each starts, RESULT
 * when it ends) and never lets a command's failure become its own. Each READY starts a session
 * in which the worker holds nothing: jobs of an earlier session are killed unreported, since the
 * broker has requeued them.
 */
export class Worker {
  readonly name: string;
  private readonly log: Logger;
  private readonly executor: Executor;
  private readonly running = new Map<number, RunningJob>();
  private readonly link: BrokerLink;
  private session = 0;
  private pendingResults: JobResult[] = [];
  /** Started jobs not confirmed yet (QUEUED), by key, in the order they started, with when. */
  private unconfirmed = new Map<number, { ref: JobRef; at: number }>();
  private confirmTimer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  /** Jobs accepted but not given to the executor: more than it may hold at once. */
  private readonly waiting: RunningJob[] = [];
  /** Jobs given to the executor and not yet ended. */
  private executing = 0;
  private readonly prefetch: number;
  /** Whether the prefetch is offered now; see PREFETCH_ON. */
  private prefetching = false;
  /** Running average of job durations (ms), undefined before the first. */
  private averageDuration: number | undefined;
  private stopping = false;
  private readonly guard: LoadGuard;
  private readonly reaper = new GroupReaper((reason) => this.log.warn(reason));
  /**
   * Jobs of an ended session, killed but not yet gone. They are out of `running` so that the new
   * session can take a job with the same key, and they are not offered as free slots.
   */
  private readonly dying = new Set<RunningJob>();
  /** Why the worker is draining (taking no new job, leaving once the running ones end), if it is. */
  private draining: string | undefined;
  private accepted = 0;
  private recycleTimer: NodeJS.Timeout | undefined;
  private leave!: (reason: string) => void;
  /** Resolves, with the reason, once the worker has left its broker (drained, recycled or stopped). */
  readonly finished = new Promise<string>((resolve) => (this.leave = resolve));
  completed = 0;

  constructor(private readonly options: WorkerOptions) {
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.log = options.logger ?? createLogger('testworker');
    this.executor = options.executor ?? new ExecaExecutor();
    this.prefetch = Math.max(0, Math.floor(options.prefetch ?? PREFETCH_PER_SLOT * options.slots));
    this.link = new BrokerLink({
      endpoint: options.broker,
      role: 'worker',
      greeting: () => this.ready(),
      heartbeat: () => this.heartbeat(),
      onMessage: (message) => this.onMessage(message),
      onSession: (session) => this.onSession(session),
      onLost: (reason) => this.log.info(`lost the broker at ${options.broker}: ${reason}; reconnecting`),
      logger: this.log,
      ...(options.heartbeat !== undefined ? { heartbeatInterval: options.heartbeat } : {}),
      ...(options.liveness !== undefined ? { liveness: options.liveness } : {}),
      ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
      ...(options.curve !== undefined ? { curve: options.curve } : {}),
    });
    this.guard = new LoadGuard({
      source: options.host?.source ?? new ProcLoadSource(),
      limits: options.host?.limits ?? {},
      interval: options.host?.loadInterval ?? 1000,
      logger: this.log,
      kill: (id) => this.running.get(id)?.cancel.abort(),
      onChange: () => {
        if (!this.guard.admitting) this.handBackUnstarted(`withholding slots: ${this.guard.withheldBecause}`);
        this.beat();
      },
    });
  }

  get busy(): number {
    return this.running.size;
  }

  start(): void {
    // Greet the broker once the first sample says whether we may take work at all.
    void this.guard.start().finally(() => {
      if (!this.stopping) this.link.start();
    });
    const maxRunningTime = this.options.host?.maxRunningTime;
    if (maxRunningTime !== undefined) {
      this.recycleTimer = setTimeout(() => this.drain(`recycling: ran for ${maxRunningTime / 1000}s (--max-running-time)`), maxRunningTime);
      this.recycleTimer.unref();
    }
  }

  /**
   * Takes no new job (the broker hears "draining, 0 slots offered" at once), hands back the
   * ones that have not started (unless `keepAccepted`), lets the running ones finish and report,
   * then says BYE. `finished` resolves when it has left.
   */
  drain(reason: string, options: { keepAccepted?: boolean } = {}): void {
    if (this.draining !== undefined || this.stopping) return;
    this.draining = reason;
    // What waits here would only wait longer; but --max-jobs counts jobs taken, and runs them.
    if (!options.keepAccepted) this.handBackUnstarted(`draining: ${reason}`);
    const toFinish = [...this.running.values()].filter((job) => job.handBack === undefined).length;
    this.log.info(`draining (${reason}): ${toFinish} job(s) to finish, no new ones`);
    this.beat();
    this.leaveIfDrained();
  }

  /** Cancels the running jobs and hands them back to the broker to run elsewhere, then leaves. */
  async abandon(reason: string): Promise<void> {
    const jobs = [...this.running.values()].filter((j) => j.session === this.session).map((j) => ({ id: j.spec.id, attempt: j.spec.attempt }));
    if (jobs.length > 0 && !this.stopping) {
      this.log.info(`handing ${jobs.length} running job(s) back to the broker: ${reason}`);
      this.link.send({ type: 'requeue', jobs, reason });
    }
    await this.stop(reason);
  }

  /** Leaves the broker (which requeues anything still running here) and closes the link. */
  async stop(reason = 'worker shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.guard.stop();
    clearTimeout(this.recycleTimer);
    clearTimeout(this.confirmTimer);
    for (const job of this.running.values()) job.cancel.abort();
    await this.link.close(reason);
    await this.executor.close?.();
    this.reaper.close();
    this.leave(reason);
  }

  /** The greeting of every session: whatever still runs belongs to a session that is over. */
  private ready(): Message {
    this.session++;
    // Into `dying` first: a job still waiting here ends during its abort().
    const jobs = [...this.running.values()];
    this.running.clear();
    for (const job of jobs) {
      this.dying.add(job);
      job.cancel.abort();
    }
    this.unconfirmed.clear();
    this.pendingResults = [];
    return {
      type: 'ready',
      worker: this.name,
      host: hostname(),
      pid: process.pid,
      slots: this.options.slots,
      weight: this.options.weight ?? 1,
      ...(this.prefetch > 0 ? { prefetch: this.prefetch } : {}),
    };
  }

  /**
   * State, usable slots and readings. Slots are withheld (0 offered) while draining or while a
   * load limit bites, and --max-jobs caps them at what the worker may still take.
   */
  private heartbeat(): MessageOfType<'heartbeat'> {
    const { slots } = this.options;
    const admit = this.guard.admitting;
    const state = workerStateOf({ draining: this.draining !== undefined, paused: this.guard.pausedCount, admit, running: this.running.size, slots });
    const maxJobs = this.options.host?.maxJobs;
    const takes = slots + (this.prefetching ? this.prefetch : 0);
    const allowed = maxJobs === undefined ? takes : Math.min(takes, this.running.size + maxJobs - this.accepted);
    const offered = this.draining !== undefined || !admit ? 0 : Math.max(0, allowed - this.dying.size);
    const load = this.guard.report();
    return { type: 'heartbeat', state, offered, ...(load ? { load } : {}) };
  }

  /** Tells the broker our state now rather than at the next heartbeat. */
  private beat(): void {
    if (!this.stopping) this.link.send(this.heartbeat());
  }

  /** Jobs the worker will not run (draining, or limits bite): the broker sends them elsewhere. */
  private handBack(jobs: JobRef[], reason: string): void {
    for (const job of jobs) this.unconfirmed.delete(job.id);
    this.link.send({ type: 'requeue', jobs, reason });
  }

  private leaveIfDrained(): void {
    if (this.draining !== undefined && this.running.size === 0 && !this.flushScheduled) void this.stop(this.draining);
  }

  private onSession(session: Session): void {
    this.log.info(
      `connected to broker at ${this.options.broker} (${session.newBroker ? 'broker ' : 'session with '}${session.broker}) with ${this.options.slots} slot(s) as ${this.name}`,
    );
    // READY cannot say "withheld" or "draining": the first heartbeat follows it at once.
    this.beat();
  }

  private onMessage(message: Message): void {
    switch (message.type) {
      case 'job':
        for (const job of message.jobs) this.startJob(job);
        return;
      case 'cancel':
        for (const ref of message.jobs) {
          const job = this.running.get(ref.id);
          if (job && job.spec.attempt === ref.attempt) job.cancel.abort();
        }
        return;
      case 'ok':
      case 'heartbeat':
      case 'bye':
        return; // the link's business
      case 'ready':
      case 'queued':
      case 'result':
      case 'hello':
      case 'submit':
      case 'error':
      case 'requeue':
        this.log.limited(`unexpected-${message.type}`, `ignored a ${message.type.toUpperCase()} from the broker: not a broker-to-worker message`);
        return;
      default:
        return assertNever(message);
    }
  }

  private startJob(spec: JobSpec): void {
    if (this.running.has(spec.id) || this.stopping) return;
    // Sent before the broker heard that we withdrew our slots: back unrun (no QUEUED, so not a loss).
    if (this.draining !== undefined || !this.guard.admitting) {
      this.handBack([{ id: spec.id, attempt: spec.attempt }], this.draining !== undefined ? `draining: ${this.draining}` : `withholding slots: ${this.guard.withheldBecause}`);
      return;
    }
    // Only the broker's bookkeeping keeps us within our slots; a confused or hostile one must not
    // make us run more than we offered.
    if (this.running.size + this.dying.size >= this.options.slots + this.prefetch) {
      this.handBack([{ id: spec.id, attempt: spec.attempt }], `all ${this.options.slots} slot(s) are busy`);
      return;
    }
    const job: RunningJob = { spec, cancel: new Cancel(), session: this.session, started: false, handBack: undefined, pauses: this.guard.track(spec.id) };
    this.running.set(spec.id, job);
    const maxJobs = this.options.host?.maxJobs;
    if (maxJobs !== undefined && ++this.accepted >= maxJobs) this.drain(`recycling: took ${maxJobs} job(s) (--max-jobs ${maxJobs})`, { keepAccepted: true });
    // The executor holds what it can start without us (its slots, and its queue if it has one);
    // the rest waits here, and a cancelled waiting job ends without having run.
    if (this.executing < this.executorRoom) this.execute(job);
    else {
      this.waiting.push(job);
      job.cancel.addEventListener('abort', () => this.dropWaiting(job));
    }
  }

  /** Jobs the executor may hold at once: its slots, and the prefetch if it queues them itself. */
  private get executorRoom(): number {
    return this.options.slots + (this.executor.queues ? this.prefetch : 0);
  }

  /** Gives waiting jobs to the executor as it has room. */
  private startWaiting(): void {
    while (this.executing < this.executorRoom && this.waiting.length > 0) this.execute(this.waiting.shift()!);
  }

  private dropWaiting(job: RunningJob): void {
    const index = this.waiting.indexOf(job);
    if (index === -1) return;
    this.waiting.splice(index, 1);
    this.ended(job, notStarted(null, 'cancelled'));
  }

  /**
   * Jobs accepted but not started go back to the broker (REQUEUE: not a loss, as they never
   * ran) to run where a slot is free: a draining worker or one whose limits bite would only sit
   * on them.
   */
  private handBackUnstarted(reason: string): void {
    for (const job of this.running.values()) {
      if (job.started || job.handBack !== undefined || job.session !== this.session) continue;
      job.handBack = reason;
      job.cancel.abort(); // a waiting job ends now; the executor drops a queued one
    }
  }

  /** The job has left every queue and runs: confirmed to the broker unless it ends first. */
  private onStart(job: RunningJob): void {
    if (job.started) return;
    job.started = true;
    this.guard.started(job.spec.id);
    if (job.session !== this.session || this.stopping) return;
    this.unconfirmed.set(job.spec.id, { ref: { id: job.spec.id, attempt: job.spec.attempt }, at: performance.now() });
    this.confirmLater();
  }

  private execute(job: RunningJob): void {
    const { spec } = job;
    this.executing++;
    const nice = this.options.host?.niceIncrement;
    const where = jobDirectory(this.options.cwd ?? process.cwd(), spec.cwd);
    /** Set once the group reaper knows the job. */
    let spawnedPid: number | undefined;
    (where.error === undefined ? this.executor : refusingExecutor(where.error))
      .run({
        cmd: nice ? niceCommand(spec.cmd, nice) : spec.cmd,
        onStart: () => this.onStart(job),
        onSpawn: (pid) => {
          if (!this.executor.killsOrphans) {
            spawnedPid = pid;
            this.reaper.track(pid);
          }
          this.guard.spawned(spec.id, pid);
        },
        cwd: where.dir ?? '',
        ...(spec.env !== undefined ? { env: spec.env } : {}),
        maxOutput: this.options.maxOutput ?? DEFAULT_MAX_OUTPUT,
        signal: job.cancel,
        pauses: job.pauses,
        timeout: spec.timeout,
        idleTimeout: spec.idleTimeout,
      })
      .catch((error: unknown): ExecOutcome => ({
        exitcode: null,
        signal: null,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        stdoutTruncated: 0,
        stderrTruncated: 0,
        duration: 0,
        error: error instanceof Error ? error.message : String(error),
        stopped: null,
      }))
      .then((outcome) => {
        if (spawnedPid !== undefined) this.reaper.release(spawnedPid);
        this.executing--;
        this.ended(job, outcome);
        this.startWaiting();
      });
  }

  /** A job is over, run or not: its RESULT goes out, unless it belongs to a session that ended. */
  private ended(job: RunningJob, outcome: ExecOutcome): void {
    const { spec } = job;
    const current = this.running.get(spec.id) === job;
    if (current) this.running.delete(spec.id);
    this.dying.delete(job);
    // The guard knows jobs by key: a new session's job with this key keeps its entry.
    const { paused, killedFor } = current || !this.running.has(spec.id) ? this.guard.release(spec.id) : { paused: 0, killedFor: undefined };
    if (this.stopping || job.session !== this.session) return this.leaveIfDrained();
    // Taken back: unless it had started after all (its start was on its way) and ended by
    // itself, when its result stands.
    if (job.handBack !== undefined && (!job.started || outcome.stopped === 'cancelled')) {
      this.handBack([{ id: spec.id, attempt: spec.attempt }], job.handBack);
      return this.leaveIfDrained();
    }
    if (killedFor !== undefined) {
      // Killed for the host's sake: another worker runs it; no RESULT, so it is printed once.
      this.handBack([{ id: spec.id, attempt: spec.attempt }], killedFor);
      return this.leaveIfDrained();
    }
    this.completed++;
    if (job.started) this.learnDuration(outcome.duration);
    const result = toResult(spec, outcome, this.name);
    if (paused > 0) result.paused = paused;
    this.unconfirmed.delete(spec.id); // the RESULT confirms it
    this.pendingResults.push(result);
    this.scheduleFlush();
  }

  /** Offers the prefetch while jobs are short, withdraws it when they are long; see PREFETCH_ON. */
  private learnDuration(duration: number): void {
    if (this.prefetch === 0) return;
    this.averageDuration = this.averageDuration === undefined ? duration : this.averageDuration * 0.8 + duration * 0.2;
    const prefetching = this.prefetching ? this.averageDuration <= PREFETCH_OFF : this.averageDuration < PREFETCH_ON;
    if (prefetching === this.prefetching) return;
    this.prefetching = prefetching;
    this.beat();
  }

  /** Sends QUEUED for the jobs that have run CONFIRM_AFTER ms without a RESULT. */
  private confirmLater(): void {
    if (this.confirmTimer !== undefined || this.unconfirmed.size === 0) return;
    const oldest = this.unconfirmed.values().next().value!;
    const wait = Math.max(0, oldest.at + CONFIRM_AFTER - performance.now());
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined;
      if (this.stopping) return;
      const due = performance.now() - CONFIRM_AFTER;
      const jobs: JobRef[] = [];
      for (const [key, { ref, at }] of this.unconfirmed) {
        if (at > due) break;
        jobs.push(ref);
        this.unconfirmed.delete(key);
      }
      if (jobs.length > 0) this.link.send({ type: 'queued', jobs });
      this.confirmLater();
    }, wait);
  }

  /**
   * Results that happen in the same turn of the event loop travel as one message; while the
   * prefetch keeps the slots busy, they also wait up to COALESCE ms for company, since each
   * message costs every hop more than the job it reports. An idle worker sends at once.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const flush = () => {
      this.flushScheduled = false;
      if (this.pendingResults.length > 0) {
        for (const results of sizedBatches(this.pendingResults, this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE)) {
          this.link.send({ type: 'result', results });
        }
        this.pendingResults = [];
      }
      this.leaveIfDrained();
    };
    if (this.prefetching && this.executing >= this.options.slots && this.draining === undefined) setTimeout(flush, COALESCE);
    else setImmediate(flush);
  }
}

/**
 * Splits results so that no RESULT can outgrow the message size limit: JSON may escape a byte
 * of output into six characters (a NUL becomes \u0000), so each message carries at most a
 * sixth of the limit's worth of output (less a margin); a single large result travels alone.
 */
export function sizedBatches(results: JobResult[], maxMessageSize: number): JobResult[][] {
  const budget = Math.max(1, Math.floor(maxMessageSize / 6) - 64 * 1024);
  const batches: JobResult[][] = [];
  let batch: JobResult[] = [];
  let size = 0;
  for (const result of results) {
    const weight = result.stdout.length + result.stderr.length + result.cmd.length + 512;
    if (batch.length > 0 && size + weight > budget) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(result);
    size += weight;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

function toResult(job: JobSpec, outcome: ExecOutcome, worker: string): JobResult {
  const stdout = encodeStream(outcome.stdout);
  const stderr = encodeStream(outcome.stderr);
  return {
    id: job.id,
    attempt: job.attempt,
    cmd: job.cmd,
    exitcode: outcome.exitcode,
    signal: outcome.signal,
    stdout: stdout.text,
    stderr: stderr.text,
    stdoutEncoding: stdout.encoding,
    stderrEncoding: stderr.encoding,
    stdoutTruncated: outcome.stdoutTruncated,
    stderrTruncated: outcome.stderrTruncated,
    duration: Math.round(outcome.duration * 1000) / 1000,
    worker,
    error: outcome.error,
    stopped: outcome.stopped,
  };
}

