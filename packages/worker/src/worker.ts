import { hostname } from 'node:os';
import {
  BrokerLink,
  createLogger,
  encodeStream,
  type JobRef,
  type JobResult,
  type JobSpec,
  type Logger,
  type Message,
  type MessageOfType,
  type Session,
} from '@testcloud/protocol';
import { ExecaExecutor } from './execa-executor.js';
import type { ExecOutcome, Executor } from './executor.js';

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
  executor?: Executor;
  maxMessageSize?: number;
  /** Heartbeat interval until the broker announces its own (ms) and missed beats tolerated. */
  heartbeat?: number;
  liveness?: number;
  logger?: Logger;
}

export const DEFAULT_MAX_OUTPUT = 1024 * 1024;

interface RunningJob {
  spec: JobSpec;
  controller: AbortController;
  /** The session the job was received in; results of an older session are stale. */
  session: number;
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
  private pendingQueued: JobRef[] = [];
  private flushScheduled = false;
  private stopping = false;
  completed = 0;

  constructor(private readonly options: WorkerOptions) {
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.log = options.logger ?? createLogger('testworker');
    this.executor = options.executor ?? new ExecaExecutor();
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
    });
  }

  get busy(): number {
    return this.running.size;
  }

  start(): void {
    this.link.start();
  }

  /** Leaves the broker (which requeues anything still running here) and closes the link. */
  async stop(reason = 'worker shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const job of this.running.values()) job.controller.abort();
    await this.link.close(reason);
    await this.executor.close?.();
  }

  /** The greeting of every session: whatever still runs belongs to a session that is over. */
  private ready(): Message {
    this.session++;
    for (const job of this.running.values()) job.controller.abort();
    this.pendingQueued = [];
    this.pendingResults = [];
    return { type: 'ready', worker: this.name, host: hostname(), pid: process.pid, slots: this.options.slots, weight: this.options.weight ?? 1 };
  }

  private heartbeat(): MessageOfType<'heartbeat'> {
    const state = this.running.size === 0 ? 'idle' : this.running.size >= this.options.slots ? 'saturated' : 'busy';
    return { type: 'heartbeat', state, offered: this.options.slots };
  }

  private onSession(session: Session): void {
    this.log.info(
      `connected to broker at ${this.options.broker} (${session.newBroker ? 'broker ' : 'session with '}${session.broker}) with ${this.options.slots} slot(s) as ${this.name}`,
    );
  }

  private onMessage(message: Message): void {
    switch (message.type) {
      case 'job':
        for (const job of message.jobs) this.startJob(job);
        return;
      case 'cancel':
        for (const ref of message.jobs) {
          const job = this.running.get(ref.id);
          if (job && job.spec.attempt === ref.attempt) job.controller.abort();
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
    const job: RunningJob = { spec, controller: new AbortController(), session: this.session };
    this.running.set(spec.id, job);
    this.pendingQueued.push({ id: spec.id, attempt: spec.attempt });
    this.scheduleFlush();
    this.executor
      .run({
        cmd: spec.cmd,
        cwd: this.options.cwd ?? process.cwd(),
        maxOutput: this.options.maxOutput ?? DEFAULT_MAX_OUTPUT,
        signal: job.controller.signal,
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
        if (this.running.get(spec.id) === job) this.running.delete(spec.id);
        if (this.stopping || job.session !== this.session) return;
        this.completed++;
        this.pendingResults.push(toResult(spec, outcome, this.name));
        this.scheduleFlush();
      });
  }

  /** Results and QUEUEDs that happen in the same turn of the event loop travel as one message. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.pendingQueued.length > 0) {
        this.link.send({ type: 'queued', jobs: this.pendingQueued });
        this.pendingQueued = [];
      }
      if (this.pendingResults.length > 0) {
        this.link.send({ type: 'result', results: this.pendingResults });
        this.pendingResults = [];
      }
    });
  }
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

function assertNever(value: never): never {
  throw new Error(`unhandled message ${JSON.stringify(value)}`);
}
