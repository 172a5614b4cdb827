import { spawn, type ChildProcess } from 'node:child_process';
import { constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAUNCHER_SCRIPT, environmentArguments, shellQuote, type LauncherEnvironment } from './launcher-script.js';

/** What a launcher tells the job it is running; see launcher-script.ts for the wire. */
export interface LaunchEvents {
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
}

const EXITED_WORDS = new Set(['Done', 'Exit']);

/**
 * One persistent bash that runs one job at a time (one worker slot). It is reused as long as
 * every job's streams reached end-of-file; a launcher whose FIFOs may still have a writer (a
 * stopped job whose escaped children hold them) is retired instead.
 */
export class Launcher {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private lines = '';
  private job: { events: LaunchEvents; pid: number; ended: Map<number, boolean>; open: Socket[] } | undefined;
  private readyWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private diagnostics = '';
  /** Resolves once bash has made its FIFOs; rejects if it dies first. */
  readonly ready: Promise<void>;
  alive = true;

  constructor(private readonly environment: LauncherEnvironment) {
    this.dir = mkdtempSync(join(tmpdir(), 'testcloud-launcher-'));
    this.ready = new Promise((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.ready.catch(() => {});
    this.child = spawn('bash', ['-c', LAUNCHER_SCRIPT, 'testcloud-launcher', this.dir], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: environment.launcher,
    });
    this.child.stdout!.setEncoding('latin1');
    this.child.stdout!.on('data', (text: string) => this.onEvents(text));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => (this.diagnostics = (this.diagnostics + text).slice(-2000)));
    this.child.stdin!.on('error', () => {});
    this.child.on('error', (error) => this.onExit(`cannot start bash: ${error.message}`));
    this.child.on('close', (code, signal) => this.onExit(`the launcher shell exited (${signal ?? `code ${code}`})`));
  }

  get idle(): boolean {
    return this.alive && this.job === undefined;
  }

  /** Starts a job; the launcher must be idle and ready. */
  launch(request: LaunchRequest, events: LaunchEvents): void {
    const open = [this.reader('o', (chunk) => events.stdout(chunk)), this.reader('e', (chunk) => events.stderr(chunk))];
    this.job = { events, pid: 0, ended: new Map(), open };
    const line = `__tc_run ${shellQuote(request.cwd)} ${shellQuote(request.cmd)} ${environmentArguments(this.environment.restore, request.env)}\n`;
    this.child.stdin!.write(line);
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

  /** Stops reading the job's streams now (a stopped job's stray children may hold them). */
  abandonStreams(): void {
    const job = this.job;
    if (!job || job.open.length === 0) return;
    for (const socket of job.open) socket.destroy();
    job.open = [];
    // A writer may still hold our FIFOs: this launcher cannot vouch for the next job's output.
    this.retire();
    this.finishIfDone();
  }

  /** Ends bash (it finishes a running job first) and removes its directory. */
  retire(): void {
    if (!this.alive) return;
    this.alive = false;
    this.child.stdin!.end();
    if (this.job === undefined) this.cleanUp();
  }

  private reader(name: 'o' | 'e', onData: (chunk: Buffer) => void): Socket {
    // O_NONBLOCK: opening does not wait for the writer, and Linux reports no hang-up on a FIFO
    // that has not had a writer since it was opened, so reading starts when the job opens it.
    const fd = openSync(join(this.dir, name), constants.O_RDONLY | constants.O_NONBLOCK);
    const socket = new Socket({ fd, readable: true, writable: false });
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      const job = this.job;
      if (!job) return;
      const index = job.open.indexOf(socket);
      if (index === -1) return;
      job.open.splice(index, 1);
      this.finishIfDone();
    });
    return socket;
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
    const job = this.job;
    switch (line[0]) {
      case 'R':
        this.readyWaiter?.resolve();
        return;
      case 'P':
        if (!job) return;
        job.pid = Number(line.slice(2));
        job.events.started(job.pid);
        return;
      case '[': {
        // `jobs -l` from the CHLD trap, possibly before P when the job is quick.
        const match = /^\[\d+\][+-]?\s+(\d+)\s+(\S+)/.exec(line);
        if (job && match && match[2] !== 'Running' && match[2] !== 'Stopped') job.ended.set(Number(match[1]), EXITED_WORDS.has(match[2]!));
        return;
      }
      case 'E':
        if (!job) return;
        // The job never opened its FIFOs, so no end-of-file will come.
        for (const socket of job.open) socket.destroy();
        job.open = [];
        job.events.failed(line.slice(2));
        return;
      case 'S': {
        if (!job) return;
        const status = Number(line.slice(2));
        // Without the trap's word (not seen in practice) a status above 128 is taken as a signal.
        const exited = job.ended.get(job.pid) ?? status <= 128;
        job.pid = -1;
        job.events.exited(exited ? status : null, exited ? null : status - 128);
        this.finishIfDone();
        return;
      }
      default:
        return; // bash's own chatter
    }
  }

  private finishIfDone(): void {
    const job = this.job;
    if (!job || job.pid !== -1 || job.open.length > 0) return;
    this.job = undefined;
    job.events.closed();
    if (!this.alive) this.cleanUp();
  }

  private onExit(reason: string): void {
    const wasAlive = this.alive;
    this.alive = false;
    const failure = new Error(`${reason}${this.diagnostics ? `: ${this.diagnostics.trim().split('\n').pop()}` : ''}`);
    this.readyWaiter?.reject(failure);
    const job = this.job;
    if (job) {
      for (const socket of job.open) socket.destroy();
      job.open = [];
      if (job.pid !== -1) {
        // The job may outlive its launcher; it cannot be reaped or reported on, so it is stopped.
        if (job.pid > 0) killQuietly(-job.pid, 'SIGKILL');
        job.events.failed(wasAlive ? failure.message : 'the launcher was stopped');
        job.pid = -1;
      }
      this.finishIfDone();
    }
    this.cleanUp();
  }

  private cleanUp(): void {
    if (this.job !== undefined) return;
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For close(): ends bash now, whatever it runs. */
  kill(): void {
    this.alive = false;
    killQuietly(this.child.pid, 'SIGKILL');
  }
}

function killQuietly(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
