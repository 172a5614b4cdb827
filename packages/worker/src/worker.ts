import { hostname } from 'node:os';
import {
  Channel,
  DEFAULT_MAX_MESSAGE_SIZE,
  createLogger,
  encodeStream,
  type JobRef,
  type JobResult,
  type JobSpec,
  type Logger,
  type Message,
} from '@testcloud/protocol';
import { Dealer } from 'zeromq';
import { randomBytes } from 'node:crypto';
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
  logger?: Logger;
}

export const DEFAULT_MAX_OUTPUT = 1024 * 1024;

/**
 * A worker: says READY to a broker, runs the JOBs it is sent (QUEUED when each starts, RESULT
 * when it ends) and never lets a command's failure become its own.
 */
export class Worker {
  readonly name: string;
  private readonly log: Logger;
  private readonly executor: Executor;
  private readonly running = new Map<number, AbortController>();
  private socket: Dealer | undefined;
  private channel: Channel | undefined;
  private pendingResults: JobResult[] = [];
  private pendingQueued: JobRef[] = [];
  private flushScheduled = false;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private connectedTo: string | undefined;
  completed = 0;

  constructor(private readonly options: WorkerOptions) {
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.log = options.logger ?? createLogger('testworker');
    this.executor = options.executor ?? new ExecaExecutor();
  }

  get busy(): number {
    return this.running.size;
  }

  /** Connects and announces itself; resolves once the socket is set up, not on the broker's OK. */
  start(): void {
    const maxMessageSize = this.options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.socket = new Dealer({
      linger: 1000,
      maxMessageSize,
      // Keeping one routing id across reconnects lets the broker match us to our running jobs.
      routingId: `w-${randomBytes(8).toString('hex')}`,
      sendHighWaterMark: 0,
      receiveHighWaterMark: 0,
    });
    this.socket.connect(this.options.broker);
    this.channel = new Channel(this.socket, {
      maxMessageSize,
      onDropped: (error) => this.log.limited(`drop-${error.code}`, `dropped a bad message from the broker (${error.code}: ${error.message})`),
      onSendError: (error) => this.log.limited('send', `cannot send to the broker: ${String(error)}`),
    });
    this.sendReady();
    this.loop = this.serve();
  }

  /** Leaves the broker (which requeues anything still running here) and closes the socket. */
  async stop(reason = 'worker shutting down'): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const controller of this.running.values()) controller.abort();
    this.channel?.send({ type: 'bye', reason });
    await this.channel?.drained();
    this.socket?.close();
    await this.loop;
    await this.executor.close?.();
  }

  private sendReady(): void {
    this.channel!.send({
      type: 'ready',
      worker: this.name,
      host: hostname(),
      pid: process.pid,
      slots: this.options.slots,
      weight: this.options.weight ?? 1,
    });
  }

  private async serve(): Promise<void> {
    try {
      for await (const message of this.channel!.messages()) this.onMessage(message);
    } catch (error) {
      if (!this.stopping) this.log.warn(`receive loop failed: ${String(error)}`);
    }
  }

  private onMessage(message: Message): void {
    switch (message.type) {
      case 'ok':
        if (this.connectedTo !== message.broker) {
          this.connectedTo = message.broker;
          this.log.info(`connected to broker at ${this.options.broker} with ${this.options.slots} slot(s) as ${this.name}`);
        }
        return;
      case 'job':
        for (const job of message.jobs) this.startJob(job);
        return;
      case 'heartbeat':
        return;
      case 'cancel':
        for (const ref of message.jobs) this.running.get(ref.id)?.abort();
        return;
      case 'bye':
        this.log.info(`broker at ${this.options.broker} said goodbye: ${message.reason}`);
        this.connectedTo = undefined;
        return;
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

  private startJob(job: JobSpec): void {
    if (this.running.has(job.id)) return;
    const controller = new AbortController();
    this.running.set(job.id, controller);
    this.pendingQueued.push({ id: job.id, attempt: job.attempt });
    this.scheduleFlush();
    this.executor
      .run({
        cmd: job.cmd,
        cwd: this.options.cwd ?? process.cwd(),
        maxOutput: this.options.maxOutput ?? DEFAULT_MAX_OUTPUT,
        signal: controller.signal,
        timeout: job.timeout,
        idleTimeout: job.idleTimeout,
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
        this.running.delete(job.id);
        if (this.stopping) return;
        this.completed++;
        this.pendingResults.push(toResult(job, outcome, this.name));
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
        this.channel!.send({ type: 'queued', jobs: this.pendingQueued });
        this.pendingQueued = [];
      }
      if (this.pendingResults.length > 0) {
        this.channel!.send({ type: 'result', results: this.pendingResults });
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
