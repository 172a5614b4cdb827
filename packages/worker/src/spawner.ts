import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { SPAWNER_SCRIPT, SPAWNER_TOO_OLD } from './spawner-script.js';
import { watchHelper } from './helper-process.js';
import { stopGroup } from './process-group.js';

/** What the spawner tells the executor about one job; see spawner-script.ts for the wire. */
export interface SpawnEvents {
  /** Its S record was read: the job has started (it may be over by the end of the batch). Called at once. */
  begun(): void;
  /**
   * The job has started, as `pid` (its process group id); called at the end of the batch its S
   * came in. `pid` is undefined when its exit was read in the same batch: its pid may name
   * nothing soon (its group can still be signalled through signal() while the job is not over:
   * Python keeps the leader a zombie until then). Not called for a job that was over by then.
   */
  started(pid: number | undefined): void;
  output(stream: 1 | 2, chunk: Buffer): void;
  /** `count` bytes of the stream arrived beyond maxOutput and were dropped. */
  dropped(stream: 1 | 2, count: number): void;
  /** The job could not start; `reason` is `cwd` when its directory could not be entered. */
  failed(reason: string): void;
  /** The job's shell has ended: exactly one of `exitcode` and `signal` is set. Output may still flow. */
  exited(exitcode: number | null, signal: number | null): void;
  /** The job is over; `runtime` is ms from its actual start, undefined if it never started. */
  over(runtime: number | undefined): void;
  /**
   * Python died (`reason`) before it started the job: nothing of it ran, and it may be run
   * again elsewhere. Nothing else follows (not over()).
   */
  lost(reason: string): void;
}

export interface SpawnRequest {
  cmd: string;
  /** '' for the spawner's own directory. */
  cwd: string;
  env?: Record<string, string>;
  maxOutput: number;
}

/** A job handed to the spawner. */
export interface SpawnedJob {
  /** Signals the job's process group while it may exist; a job still queued is dropped instead. */
  signal(signum: number): void;
  /** Stops reading the streams of a job that has ended (its escaped children still hold them). */
  abandonStreams(): void;
}

interface Job {
  seq: number;
  events: SpawnEvents;
  /** 0 until its S record is read. */
  pid: number;
  /** Python's CLOCK_MONOTONIC at the start, which is process.hrtime's clock. */
  startedAt: bigint | undefined;
  exited: boolean;
  closed: boolean;
  over: boolean;
}

/** An O record's body still to come. */
interface Body {
  job: Job | undefined;
  stream: 1 | 2;
  parts: Buffer[];
  left: number;
}

/** See Spawner.send. */
const QUEUE_DEEP = 3;
const FLUSH_LATER = 2;

/**
 * One persistent Python process (spawner-script.ts) that starts and watches every job of an
 * executor: Node sends a line per job and reads a few records back, batched, so a short job
 * costs the worker's event loop one wake-up or less.
 */
export class Spawner {
  private readonly child: ChildProcess;
  private readonly jobs = new Map<number, Job>();
  private seq = 0;
  private outgoing = '';
  /** How `outgoing` will be written: at the end of this turn, or a little later (see send). */
  private flushing: 'tick' | 'later' | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Jobs sent to Python that have not started (or failed, or been dropped) yet: its queue. */
  private unstarted = 0;
  /** The start of a record header split across reads. */
  private partial: Buffer | undefined;
  private body: Body | undefined;
  /** Jobs whose S was read in the current batch: started() waits for the end of the batch. */
  private starting: Job[] = [];
  private readyWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Callers of whenReady() still waiting. */
  private waiters = 0;
  private retiring = false;
  private held = true;
  /** Resolves once Python runs; rejects if it cannot start (missing, too old, failing). */
  readonly ready: Promise<void>;
  /** Resolves once Python has exited. */
  readonly exited: Promise<void>;
  alive = true;

  /**
   * @param home the directory Python runs in: jobs that run there need no chdir.
   * @param env the jobs' environment (execa's: the worker's).
   */
  constructor(
    readonly home: string,
    env: NodeJS.ProcessEnv,
    private readonly slots: number,
    python = 'python3',
  ) {
    this.ready = new Promise((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.ready.catch(() => {});
    this.child = takePrestarted(python) ?? startPython(python, env);
    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    this.exited = watchHelper(
      this.child,
      {
        startFailed: (error) => `cannot start ${python}: ${error.message}`,
        ended: (code, signal) => (code === SPAWNER_TOO_OLD ? `${python} is older than 3.8` : `${python} exited (${signal ?? `code ${code}`})`),
      },
      (failure) => this.onExit(failure),
    );
    const jobEnv: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) if (value !== undefined) jobEnv[name] = value;
    this.send(['e', jobEnv, Number.isFinite(slots) ? slots : 0, home]);
    // Now, not at the end of the turn: a prestarted Python is waiting for this line, and the
    // turn that starts a worker goes on for a while (~5 ms in testclient --local).
    this.flush();
    this.holdWhileBusy();
  }

  /** Resolves once Python runs (rejects if it cannot start), keeping the process alive meanwhile. */
  async whenReady(): Promise<void> {
    this.waiters++;
    this.holdWhileBusy();
    try {
      await this.ready;
    } finally {
      this.waiters--;
      this.holdWhileBusy();
    }
  }

  /** Queues a job; Python starts it once fewer than `slots` jobs run. */
  run(request: SpawnRequest, events: SpawnEvents): SpawnedJob {
    const job: Job = { seq: ++this.seq, events, pid: 0, startedAt: undefined, exited: false, closed: false, over: false };
    this.jobs.set(job.seq, job);
    this.holdWhileBusy();
    this.unstarted++;
    this.send(['r', job.seq, request.cmd, request.cwd === this.home ? '' : request.cwd, request.env ?? null, request.maxOutput], false);
    return {
      signal: (signum) => {
        if (!job.over) this.send(['k', job.seq, signum]);
      },
      abandonStreams: () => {
        if (!job.over && !job.closed) this.send(['a', job.seq]);
      },
    };
  }

  /** Ends Python once it has run what it was sent. */
  retire(): void {
    if (!this.alive) return;
    this.alive = false;
    this.retiring = true; // keeps the process up until Python has exited
    this.holdWhileBusy();
    this.flush();
    this.child.stdin!.end();
  }

  /** An idle spawner (no job, nobody waiting for it to start) does not keep the process alive. */
  private holdWhileBusy(): void {
    const busy = this.jobs.size > 0 || this.waiters > 0 || this.retiring;
    if (busy === this.held) return;
    this.held = busy;
    if (busy) this.child.ref();
    else this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) {
      if (busy) (stream as unknown as Socket).ref();
      else (stream as unknown as Socket).unref();
    }
  }

  /**
   * Requests made in one turn of the event loop go out in one write. New jobs may wait a little
   * longer (FLUSH_LATER ms) while Python's queue holds QUEUE_DEEP per slot, enough to keep every
   * slot busy meanwhile: a write costs Node and Python a wake-up each, ~25 µs, as much as a
   * tiny job costs the rest of the worker. Everything else (kills) goes at the end of the turn.
   */
  private send(request: unknown[], urgent = true): void {
    this.outgoing += `${JSON.stringify(request)}\n`;
    if (this.flushing === 'tick') return;
    if (urgent || this.unstarted < this.slots * QUEUE_DEEP) {
      clearTimeout(this.flushTimer);
      this.flushing = 'tick';
      process.nextTick(() => this.flush());
    } else if (this.flushing === undefined) {
      this.flushing = 'later';
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_LATER);
    }
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushing = undefined;
    if (this.outgoing === '') return;
    this.child.stdin!.write(this.outgoing);
    this.outgoing = '';
  }

  /** Reads records in place: headers as latin1 text, bodies copied out of the chunks they came in. */
  private onData(chunk: Buffer): void {
    let at = 0;
    if (this.partial) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    while (at < chunk.length) {
      if (this.body) {
        at = this.readBody(this.body, chunk, at);
        continue;
      }
      const newline = chunk.indexOf(10, at);
      if (newline === -1) {
        this.partial = Buffer.from(chunk.subarray(at));
        break;
      }
      this.onRecord(chunk.toString('latin1', at, newline));
      at = newline + 1;
    }
    for (const job of this.starting.splice(0)) {
      if (!job.over) job.events.started(job.exited ? undefined : job.pid);
    }
  }

  private readBody(body: Body, chunk: Buffer, at: number): number {
    const end = Math.min(chunk.length, at + body.left);
    // A copy: a slice would keep the whole read chunk alive as long as the job's output.
    body.parts.push(Buffer.from(chunk.subarray(at, end)));
    body.left -= end - at;
    if (body.left === 0) {
      this.body = undefined;
      if (body.job && !body.job.over) body.job.events.output(body.stream, body.parts.length === 1 ? body.parts[0]! : Buffer.concat(body.parts));
    }
    return end;
  }

  private onRecord(header: string): void {
    const fields = header.split(' ');
    const kind = fields[0];
    if (kind === 'R') {
      this.readyWaiter?.resolve();
      this.readyWaiter = undefined;
      return;
    }
    const job = this.jobs.get(Number(fields[1]));
    switch (kind) {
      case 'O':
        this.body = { job, stream: fields[2] === '2' ? 2 : 1, parts: [], left: Number(fields[3]) };
        return;
      case 'S':
        if (!job) return;
        this.unstarted--;
        job.pid = Number(fields[2]);
        job.startedAt = BigInt(fields[3]!);
        this.starting.push(job);
        job.events.begun();
        return;
      case 'D':
        job?.events.dropped(fields[2] === '2' ? 2 : 1, Number(fields[3]));
        return;
      case 'X':
        if (!job) return;
        job.exited = true;
        job.events.exited(fields[2] === '-' ? null : Number(fields[2]), fields[3] === '-' ? null : Number(fields[3]));
        if (job.closed) this.finish(job);
        return;
      case 'C':
        if (!job) return;
        job.closed = true;
        if (job.exited) this.finish(job);
        return;
      case 'F':
        if (!job) return;
        this.unstarted--;
        job.events.failed(header.slice(header.indexOf(' ', 2) + 1));
        this.finish(job);
        return;
      case 'Q':
        if (!job) return;
        this.unstarted--;
        this.finish(job);
        return;
      default:
        return;
    }
  }

  private finish(job: Job): void {
    if (job.over) return;
    job.over = true;
    this.jobs.delete(job.seq);
    this.holdWhileBusy();
    let runtime: number | undefined;
    if (job.startedAt !== undefined) runtime = Math.max(0, Number(process.hrtime.bigint() - job.startedAt) / 1e6);
    job.events.over(runtime);
  }

  private onExit(failure: Error): void {
    const wasAlive = this.alive;
    this.alive = false;
    this.readyWaiter?.reject(failure);
    this.readyWaiter = undefined;
    for (const job of [...this.jobs.values()]) {
      if (wasAlive && job.pid === 0) {
        // No S came: Python had it queued. (Or, within the microseconds between a start and the
        // write of its batch, had started it: that job, now nobody's, then runs twice.)
        job.over = true;
        this.jobs.delete(job.seq);
        job.events.lost(failure.message);
        continue;
      }
      // Nobody is left to reap the job or report on it: it is stopped.
      if (job.pid > 0 && !job.exited) stopGroup(job.pid, 0);
      if (!job.exited) job.events.failed(wasAlive ? failure.message : 'the spawner was stopped');
      this.finish(job);
    }
    this.holdWhileBusy();
  }
}

function startPython(python: string, env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(python, ['-I', '-S', '-c', SPAWNER_SCRIPT, 'testcloud-spawner'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
}

/** A Python started ahead of need, waiting for its first line; the next Spawner of that Python adopts it. */
let prestarted: { python: string; child: ChildProcess; failed: boolean } | undefined;

/**
 * Starts the spawner's Python now, before the worker knows its options: Python's ~10-15 ms
 * start-up then overlaps whatever the process does before its first job (for testclient
 * --local, parsing its options). Holds nothing open: if no Spawner takes it, Node exits as it
 * would have, and Python, its stdin closed, exits too.
 */
export function prestartSpawner(python: string): number | undefined {
  if (prestarted) return prestarted.child.pid;
  const child = startPython(python, process.env);
  const early = { python, child, failed: false };
  // Until a Spawner adopts it, a failure to start is only noted: that Spawner starts its own.
  child.on('error', () => (early.failed = true));
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as Socket).unref();
  prestarted = early;
  return child.pid;
}

function takePrestarted(python: string): ChildProcess | undefined {
  const early = prestarted;
  prestarted = undefined;
  if (early === undefined) return undefined;
  if (early.python === python && !early.failed && early.child.exitCode === null && early.child.signalCode === null) return early.child;
  early.child.stdin!.end();
  return undefined;
}
