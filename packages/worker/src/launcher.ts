import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAUNCHER_SCRIPT, environmentArguments, shellQuote, type LauncherEnvironment } from './launcher-script.js';
import { watchHelper } from './helper-process.js';
import { stopGroup } from './process-group.js';

/** What a launcher tells the job it is running; see launcher-script.ts for the wire. */
export interface LaunchEvents {
  /** The job runs as `pid` (its process group id). Not called for a job that ended before its pid was read. */
  started(pid: number): void;
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** The job could not start; `reason` is the launcher's one word for why. */
  failed(reason: string): void;
  /** The job has ended: exactly one of `exitcode` and `signal` is set. Output may still flow. */
  exited(exitcode: number | null, signal: number | null): void;
  /** Both output streams have closed (or were given up on): the job is over. */
  closed(): void;
}

export interface LaunchRequest {
  cwd: string;
  cmd: string;
  env?: Record<string, string>;
  /** Watch output as it comes (for an idle timeout) rather than from STREAM_AFTER ms on. */
  stream?: boolean;
}

/** A job handed to a launcher. */
export interface LaunchedJob {
  /** Stops the job's process group (SIGTERM, SIGKILL after `grace` ms), now or once it starts. */
  stop(grace: number): void;
  /**
   * Stops reading the streams of a job that has ended (a stopped job whose escaped children
   * still hold them); the launcher then takes no more jobs, as a writer may remain.
   */
  abandonStreams(): void;
}

/**
 * A job still running this many ms after it became the launcher's current one gets a socket
 * per stream and its pid is looked up; a shorter one has its output read in one go at its end,
 * from the pipe buffers. Sockets and wake-ups cost as much as the rest of a short job's handling.
 */
const STREAM_AFTER = 4;
/** How often a long job's side-channel records are read: while something waits on them, and after. */
const POLL_SOON = 5;
const POLL_IDLE = 1000;
/** Side-channel records left unread (jobs that exited with a status of 128 or less) before a read. */
const SIDE_BACKLOG = 64;

interface Stream {
  /** The FIFO; its reader is the launcher's, kept open from job to job (-1 while a socket has it). */
  path: string;
  pairIndex: [number, number];
  socket: Socket | undefined;
  open: boolean;
  onData(chunk: Buffer): void;
}

interface Job extends LaunchedJob {
  events: LaunchEvents;
  /** Numbers the job's P record; unique within this launcher. */
  seq: number;
  pair: number;
  /** 0 until P is read, -1 once reaped (S). */
  pid: number;
  /** The job runs long (or wants its output as it comes): its streams get sockets once opened. */
  watched: boolean;
  pendingStop: number | undefined;
  streams: Stream[];
  timer: NodeJS.Timeout | undefined;
}

const EXITED_WORDS = new Set(['Done', 'Exit']);
/** Words of a notice about a job that has not ended. */
const LIVE_WORDS = new Set(['Stopped', 'Running', 'Continued']);
/** A P record, or bash's notice about a job in either of its forms (see launcher-script.ts). */
const SIDE_RECORD = /^(?:P (\d+) (\d+)|(?:\[\d+\][+-]?\s+|.*: line \d+: \d+\s+)(\S+))/;
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * One persistent bash that runs one job at a time (one worker slot), and may hold the next one
 * in its input so that it starts the moment the current one ends. It is reused as long as
 * every job's streams reached end-of-file; a launcher whose FIFOs may still have a writer (a
 * stopped job whose escaped children hold them) is retired instead.
 */
export class Launcher {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private lines = '';
  private side = '';
  private sideFd = -1;
  /** Readers of o0, e0, o1, e1 (by pair, then stream), opened once bash has made the FIFOs. */
  private fds: number[][] = [];
  /** Jobs sent to bash and not yet over, in the order bash runs them. */
  private readonly jobs: Job[] = [];
  /** How each pid ended according to bash's notices: true when it exited (Done, Exit N). */
  private readonly ended = new Map<number, boolean>();
  /** The pid of the last P record read: bash's notices that follow are about it. */
  private sidePid = -1;
  private readonly freePairs = [0, 1];
  /** Pairs promised to callers of reserve() that have not launched yet. */
  private reserved = 0;
  private seq = 0;
  private unreadSide = 0;
  private readyWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Resolves once bash has made its FIFOs; rejects if it dies first. */
  readonly ready: Promise<void>;
  /** Resolves once bash has exited. */
  readonly exited: Promise<void>;
  alive = true;

  /**
   * @param home the directory bash runs in: jobs that run there need no `cd`.
   */
  constructor(
    private readonly environment: LauncherEnvironment,
    private readonly home: string,
    bash = 'bash',
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'testcloud-launcher-'));
    this.ready = new Promise((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.ready.catch(() => {});
    // --norc: our stdin is a socket, which bash takes for rsh and would read ~/.bashrc.
    this.child = spawn(bash, ['--norc', '--noprofile', '-c', LAUNCHER_SCRIPT, 'testcloud-launcher', this.dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      cwd: home,
      env: environment.launcher,
    });
    this.child.stdout!.setEncoding('latin1');
    this.child.stdout!.on('data', (text: string) => this.onEvents(text));
    this.exited = watchHelper(
      this.child,
      { startFailed: (error) => `cannot start bash: ${error.message}`, ended: (code, signal) => `the launcher shell exited (${signal ?? `code ${code}`})` },
      (failure) => this.onExit(failure),
    );
  }

  /** Jobs sent (or about to be) and not over. */
  get load(): number {
    return this.jobs.length + this.reserved;
  }

  /** Whether another job can be queued behind the ones it has. */
  get hasRoom(): boolean {
    return this.alive && this.sideFd !== -1 && this.freePairs.length > this.reserved;
  }

  /** Promises the next launch() a FIFO pair; requires `hasRoom`. */
  reserve(): void {
    this.reserved++;
  }

  /** Gives back a reservation that will not be used. */
  unreserve(): void {
    this.reserved--;
  }

  /** Queues a job (after reserve()); it starts when the ones before it have ended. */
  launch(request: LaunchRequest, events: LaunchEvents): LaunchedJob {
    this.reserved--;
    const pair = this.freePairs.shift()!;
    const job: Job = {
      events,
      seq: ++this.seq,
      pair,
      pid: 0,
      watched: Boolean(request.stream),
      pendingStop: undefined,
      streams: [
        { path: join(this.dir, `o${pair}`), pairIndex: [pair, 0], socket: undefined, open: true, onData: events.stdout },
        { path: join(this.dir, `e${pair}`), pairIndex: [pair, 1], socket: undefined, open: true, onData: events.stderr },
      ],
      timer: undefined,
      stop: (grace) => this.stopJob(job, grace),
      abandonStreams: () => this.abandonStreams(job),
    };
    this.jobs.push(job);
    const cwd = request.cwd === this.home ? '' : request.cwd;
    this.child.stdin!.write(`run ${job.seq} ${pair} ${shellQuote(cwd)} ${shellQuote(request.cmd)} ${environmentArguments(this.environment.restore, request.env)}\n`);
    if (job.watched) this.poll(job, POLL_SOON);
    // Current (bash runs it now) unless a job before it has not ended yet.
    else if (this.current() === job) this.becameCurrent(job);
    return job;
  }

  /** Ends bash once it has run what it was sent, then removes its directory (onExit). */
  retire(): void {
    if (!this.alive) return;
    this.alive = false;
    this.child.stdin!.end('quit\n');
  }

  /** A launcher waiting for work does not keep the process alive. */
  letGo(): void {
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) (stream as unknown as Socket).unref();
  }

  hold(): void {
    this.child.ref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr]) (stream as unknown as Socket).ref();
  }

  /** The job bash runs now: the first one not yet reaped. */
  private current(): Job | undefined {
    return this.jobs.find((job) => job.pid !== -1);
  }

  private becameCurrent(job: Job): void {
    if (job.timer === undefined && job.pid !== -1) {
      job.timer = setTimeout(() => {
        job.watched = true;
        this.poll(job, 0);
      }, STREAM_AFTER);
    }
  }

  /**
   * Reads the side channel for a job that is watched or being stopped (its pid, how it ended)
   * and gives its streams sockets once it has opened them. Repeats until the job has ended,
   * soon while something waits, else rarely.
   */
  private poll(job: Job, delay: number): void {
    clearTimeout(job.timer);
    job.timer = setTimeout(() => {
      job.timer = undefined;
      if (job.pid === -1) return;
      this.readSide();
      const unwatched = job.watched ? this.watch(job) : 0;
      if (job.pid === -1) return;
      const waiting = job.pid === 0 || unwatched > 0 || job.pendingStop !== undefined;
      this.poll(job, waiting ? POLL_SOON : POLL_IDLE);
    }, delay);
  }

  /**
   * Gives a running job's streams sockets on the launcher's readers, each once a writer has
   * it open: a FIFO reader that has seen writers come and go reports a hang-up whenever none
   * is connected, so a socket attached before the job opened its FIFO would see a false end.
   * A non-blocking read tells: data or EAGAIN means a writer is there, end-of-file that none is
   * yet. Returns how many streams still wait for their writer.
   */
  private watch(job: Job): number {
    let waiting = 0;
    for (const stream of job.streams) {
      if (!stream.open || stream.socket) continue;
      const [pair, index] = stream.pairIndex;
      let count: number;
      try {
        count = readSync(this.fds[pair]![index]!, scratch, 0, scratch.length, null);
      } catch {
        count = -1; // EAGAIN: a writer is there, with nothing to say yet
      }
      if (count === 0) {
        waiting++;
        continue;
      }
      if (count > 0) stream.onData(Buffer.from(scratch.subarray(0, count)));
      this.attachSocket(job, stream);
    }
    return waiting;
  }

  private stopJob(job: Job, grace: number): void {
    // Reaped by bash: its pid, and so its group's id, may already name another process group.
    // Children it left running are not signalled; the executor abandons their streams instead.
    if (job.pid === -1) return;
    if (job.pid === 0) this.readSide();
    if (job.pid > 0) stopGroup(job.pid, grace);
    else {
      // Not started yet (or its P not read yet): stop it as soon as it is, and watch it from
      // now on (a job that ignores SIGTERM must not block on a full pipe until SIGKILL).
      job.pendingStop = grace;
      job.watched = true;
      if (this.current() === job) this.poll(job, POLL_SOON);
    }
  }

  private abandonStreams(job: Job): void {
    if (job.pid !== -1 || !job.streams.some((stream) => stream.open)) return;
    for (const stream of job.streams) this.closeStream(stream);
    // A writer may still hold those FIFOs: this launcher takes no more jobs.
    this.retire();
    this.finishIfDone(job);
  }

  /** Reads a stream through a socket on the launcher's reader; a writer must have it open. */
  private attachSocket(job: Job, stream: Stream): void {
    const [pair, index] = stream.pairIndex;
    const socket = new Socket({ fd: this.fds[pair]![index]!, readable: true, writable: false });
    this.fds[pair]![index] = -1; // the socket closes it; reopened when the pair is free again
    stream.socket = socket;
    socket.on('data', stream.onData);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (!stream.open) return;
      stream.open = false;
      this.finishIfDone(job);
    });
  }

  /** Reads P records and bash's notices from the side channel, if any are waiting. */
  private readSide(ending?: Job): void {
    if (this.sideFd === -1) return;
    for (;;) {
      let count: number;
      try {
        count = readSync(this.sideFd, scratch, 0, scratch.length, null);
      } catch {
        break; // EAGAIN: nothing more for now
      }
      if (count === 0) break;
      this.side += scratch.toString('latin1', 0, count);
    }
    this.unreadSide = 0;
    let newline: number;
    while ((newline = this.side.indexOf('\n')) !== -1) {
      const record = SIDE_RECORD.exec(this.side.slice(0, newline));
      this.side = this.side.slice(newline + 1);
      if (!record) continue;
      if (record[1] !== undefined) {
        this.sidePid = Number(record[2]);
        const job = this.jobs.find((candidate) => candidate.seq === Number(record[1]));
        if (job && job.pid === 0) this.onPid(job, this.sidePid, ending);
      } else if (!LIVE_WORDS.has(record[3]!)) {
        this.ended.set(this.sidePid, EXITED_WORDS.has(record[3]!));
      }
    }
    // Words of jobs already dealt with (read late, in a batch) are of no further use.
    for (const pid of this.ended.keys()) if (!this.jobs.some((job) => job.pid === pid)) this.ended.delete(pid);
  }

  private onPid(job: Job, pid: number, ending?: Job): void {
    job.pid = pid;
    // A job whose pid is first read at its end has been reaped: its pid names nothing any more.
    if (job === ending) return;
    job.events.started(pid);
    if (job.pendingStop !== undefined) stopGroup(pid, job.pendingStop);
    job.pendingStop = undefined;
  }

  /** After S without sockets: what the job wrote waits in the pipe buffers. */
  private drain(job: Job): void {
    for (const stream of job.streams) {
      if (!stream.open || stream.socket) continue;
      const [pair, index] = stream.pairIndex;
      for (;;) {
        let count: number;
        try {
          count = readSync(this.fds[pair]![index]!, scratch, 0, scratch.length, null);
        } catch (error) {
          // EAGAIN: empty, but a writer remains (a child the job left behind): wait for it.
          if ((error as NodeJS.ErrnoException).code === 'EAGAIN') this.attachSocket(job, stream);
          else this.closeStream(stream);
          break;
        }
        if (count === 0) {
          this.closeStream(stream); // end of file: no writer is left
          break;
        }
        stream.onData(Buffer.from(scratch.subarray(0, count)));
      }
    }
  }

  private closeStream(stream: Stream): void {
    if (!stream.open) return;
    stream.open = false;
    stream.socket?.destroy();
  }

  private onEvents(text: string): void {
    this.lines += text;
    let newline: number;
    while ((newline = this.lines.indexOf('\n')) !== -1) {
      const line = this.lines.slice(0, newline);
      this.lines = this.lines.slice(newline + 1);
      this.onEvent(line);
    }
  }

  private onEvent(line: string): void {
    switch (line[0]) {
      case 'R': {
        const open = (name: string) => openSync(join(this.dir, name), constants.O_RDONLY | constants.O_NONBLOCK);
        this.fds = [[open('o0'), open('e0')], [open('o1'), open('e1')]];
        this.sideFd = open('p');
        this.readyWaiter?.resolve();
        return;
      }
      case 'E': {
        const job = this.current();
        if (!job) return;
        // The job never opened its FIFOs, so no end-of-file will come.
        for (const stream of job.streams) this.closeStream(stream);
        job.events.failed(line.slice(2));
        return;
      }
      case 'S': {
        const job = this.current();
        if (!job) return;
        const status = Number(line.slice(2));
        // The side channel says how the job ended, which matters only when the status could be
        // a signal's; it is read then, and every SIDE_BACKLOG jobs so that it never fills.
        if (status > 128 || ++this.unreadSide >= SIDE_BACKLOG) this.readSide(job);
        // Up to 128 it is an exit status; above, bash's notice tells (without one, not seen in
        // practice, it is taken as a signal).
        const exited = status <= 128 || (job.pid > 0 && this.ended.get(job.pid) === true);
        this.ended.delete(job.pid);
        job.pid = -1;
        clearTimeout(job.timer);
        job.timer = undefined;
        job.events.exited(exited ? status : null, exited ? null : status - 128);
        this.drain(job);
        const next = this.current();
        if (next && !next.watched) this.becameCurrent(next);
        this.finishIfDone(job);
        return;
      }
      default:
        return; // bash's own chatter
    }
  }

  private finishIfDone(job: Job): void {
    if (job.pid !== -1 || job.streams.some((stream) => stream.open)) return;
    const index = this.jobs.indexOf(job);
    if (index === -1) return;
    this.jobs.splice(index, 1);
    // Readers handed to sockets were closed with them: the pair gets fresh ones.
    for (const stream of job.streams) {
      const [pair, slot] = stream.pairIndex;
      if (this.alive && this.fds[pair]?.[slot] === -1) this.fds[pair]![slot] = openSync(stream.path, constants.O_RDONLY | constants.O_NONBLOCK);
    }
    this.freePairs.push(job.pair);
    job.events.closed();
  }

  private onExit(failure: Error): void {
    const wasAlive = this.alive;
    this.alive = false;
    this.readyWaiter?.reject(failure);
    this.readSide();
    for (const job of [...this.jobs]) {
      clearTimeout(job.timer);
      for (const stream of job.streams) this.closeStream(stream);
      if (job.pid !== -1) {
        // The job may outlive its launcher; it cannot be reaped or reported on, so it is stopped.
        if (job.pid > 0) stopGroup(job.pid, 0);
        job.events.failed(wasAlive ? failure.message : 'the launcher was stopped');
        job.pid = -1;
      }
      this.finishIfDone(job);
    }
    for (const fd of [...this.fds.flat(), this.sideFd]) if (fd !== -1) closeSync(fd);
    this.fds = [];
    this.sideFd = -1;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
