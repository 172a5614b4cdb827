import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '@testcloud/protocol';
import { WorkerError } from './errors.js';

export interface SupervisorOptions {
  instances: number;
  /** The program each instance runs (the node binary) and its arguments for instance `index` (1-based). */
  command: string;
  args(index: number): string[];
  env?: NodeJS.ProcessEnv;
  /** Restarts of a crashing instance allowed within any minute; the next crash gives up on it. */
  maxRestarts: number;
  /** First restart delay after a crash, doubled for each further crash within a minute. */
  backoffMin?: number;
  backoffMax?: number;
  logger: Logger;
}

export const DEFAULT_MAX_RESTARTS = 5;
const CRASH_WINDOW = 60_000;
/** A worker that exits cleanly without saying why, sooner than this after starting, is restarted with backoff. */
const MIN_UPTIME = 1000;

/** What a supervised worker tells its supervisor over the IPC channel before it exits. */
export interface LeavingNote {
  type: 'leaving';
  reason: string;
}

interface Instance {
  index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  /** Why the current process said it is leaving (recycled, drained), if it said so. */
  leaving: string | undefined;
  crashes: number[];
  restartTimer: NodeJS.Timeout | undefined;
  gaveUp: boolean;
}

/**
 * `testworker --instances N`: runs N worker processes and keeps them running. An instance that
 * recycles (exits 0 after --max-jobs or --max-running-time) is started again at once; one that
 * crashes is restarted after a backoff (250 ms, doubling), and given up on after --max-restarts
 * restarts within a minute. stop() forwards the signal to every instance (the first drains them,
 * a second makes them hand their jobs back) and resolves when all have exited.
 *
 * Instances run in process groups of their own, so a terminal's Ctrl-C reaches the supervisor
 * alone and is forwarded once; each keeps an IPC channel to the supervisor and drains by itself
 * when that channel closes, so a supervisor killed with SIGKILL leaves no worker behind.
 */
export class Supervisor {
  private readonly instances: Instance[] = [];
  private stopping = false;
  private signals = 0;
  private resolveDone!: (code: number) => void;
  /** Resolves with the supervisor's exit code: 0 after a drain, 130 after a forced stop, 1 when every instance was given up on. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));

  constructor(private readonly options: SupervisorOptions) {}

  start(): void {
    const { instances, maxRestarts } = this.options;
    this.options.logger.info(`supervising ${instances} worker instance(s); a crashing one is restarted at most ${maxRestarts} time(s) a minute`);
    for (let index = 1; index <= instances; index++) {
      const instance: Instance = { index, child: undefined, startedAt: 0, leaving: undefined, crashes: [], restartTimer: undefined, gaveUp: false };
      this.instances.push(instance);
      this.launch(instance, 'first start');
    }
  }

  /** The pids of the instances running now, by instance number. */
  pids(): Map<number, number> {
    const pids = new Map<number, number>();
    for (const instance of this.instances) if (instance.child?.pid !== undefined) pids.set(instance.index, instance.child.pid);
    return pids;
  }

  /** Forwards `signal` to every instance; the first call also stops restarts. */
  stop(signal: NodeJS.Signals): void {
    this.signals++;
    const running = this.instances.filter((i) => i.child);
    if (!this.stopping) {
      this.stopping = true;
      for (const instance of this.instances) {
        clearTimeout(instance.restartTimer);
        instance.restartTimer = undefined;
      }
      this.options.logger.info(`${signal}: draining ${running.length} instance(s); a second signal makes them hand their jobs back`);
    } else {
      this.options.logger.info(`${signal} again: instances cancel their jobs and hand them back`);
    }
    for (const instance of running) instance.child!.kill(signal);
    this.settleIfDone();
  }

  private launch(instance: Instance, why: string): void {
    instance.restartTimer = undefined;
    instance.leaving = undefined;
    instance.startedAt = Date.now();
    const child = spawn(this.options.command, this.options.args(instance.index), {
      env: this.options.env ?? process.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    instance.child = child;
    child.on('message', (note: unknown) => {
      if (isLeavingNote(note)) instance.leaving = note.reason;
    });
    child.once('error', (error) => {
      // spawn failed: no 'exit' follows when the process never started.
      if (child.pid === undefined) this.exited(instance, child, null, null, error.message);
    });
    child.once('exit', (code, signal) => this.exited(instance, child, code, signal));
    if (child.pid !== undefined) this.options.logger.info(`instance ${instance.index} started as pid ${child.pid} (${why})`);
  }

  private exited(instance: Instance, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    if (instance.child !== child) return;
    instance.child = undefined;
    const now = Date.now();
    const uptime = now - instance.startedAt;
    const how = spawnError ? `could not start: ${spawnError}` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const who = `instance ${instance.index}${child.pid !== undefined ? ` (pid ${child.pid})` : ''}`;
    const said = instance.leaving ? ` (${instance.leaving})` : '';
    if (this.stopping) {
      this.options.logger.info(`${who} ${how}${said}`);
      this.settleIfDone();
      return;
    }
    const clean = code === 0 && !spawnError;
    // A worker that said why it left (recycled, drained) is replaced at once, however short its life.
    if (clean && (instance.leaving !== undefined || uptime >= MIN_UPTIME)) {
      this.options.logger.info(`${who} ${how}${said}; restarting it`);
      this.launch(instance, `replacing pid ${child.pid}`);
      return;
    }
    instance.crashes = instance.crashes.filter((at) => now - at < CRASH_WINDOW);
    if (instance.crashes.length >= this.options.maxRestarts) {
      instance.gaveUp = true;
      this.options.logger.warn(
        `${who} ${how}${said}; giving up on it after ${instance.crashes.length} restart(s) within a minute (--max-restarts ${this.options.maxRestarts})`,
      );
      this.settleIfDone();
      return;
    }
    instance.crashes.push(now);
    const min = this.options.backoffMin ?? 250;
    const delay = Math.min(this.options.backoffMax ?? 10_000, min * 2 ** (instance.crashes.length - 1));
    const reason = clean ? `exited after only ${uptime} ms` : 'crashed';
    this.options.logger.info(`${who} ${how}${said}; restarting it in ${delay} ms (${reason}, restart ${instance.crashes.length} of ${this.options.maxRestarts} this minute)`);
    instance.restartTimer = setTimeout(() => this.launch(instance, `replacing pid ${child.pid}, which ${clean ? 'exited early' : how}`), delay);
  }

  private settleIfDone(): void {
    if (this.instances.some((i) => i.child || i.restartTimer)) return;
    if (this.stopping) {
      this.options.logger.info('every instance has exited');
      this.resolveDone(this.signals > 1 ? 130 : 0);
    } else if (this.instances.every((i) => i.gaveUp)) {
      this.options.logger.warn('every instance was given up on: stopping');
      this.resolveDone(1);
    }
  }
}

function isLeavingNote(value: unknown): value is LeavingNote {
  return typeof value === 'object' && value !== null && (value as LeavingNote).type === 'leaving' && typeof (value as LeavingNote).reason === 'string';
}

/** Tells the supervisor (if this process has one) why it is about to exit. */
export function tellSupervisor(reason: string): void {
  if (process.send && process.connected) process.send({ type: 'leaving', reason } satisfies LeavingNote);
}

/**
 * For a worker started by a supervisor: the IPC channel must not keep the process alive, and
 * its closing (the supervisor died) means "drain and exit".
 */
export function watchSupervisor(onGone: () => void): boolean {
  if (!process.channel) return false;
  process.channel.unref();
  process.once('disconnect', onGone);
  return true;
}

const SUPERVISOR_OPTIONS = new Set(['instances', 'supervise', 'max-restarts', 'help', 'version']);

/**
 * The arguments that start one supervised instance: every option of the table as parsed
 * (explicit values, so environment variables need not be inherited), minus the supervisor's
 * own. With --name, instances are named NAME-1, NAME-2, … so the broker can tell them apart.
 */
export function instanceArgs(table: Record<string, { type?: string }>, argv: Record<string, unknown>, index: number): string[] {
  const args: string[] = [];
  for (const [name, option] of Object.entries(table)) {
    if (SUPERVISOR_OPTIONS.has(name)) continue;
    let value = argv[name];
    if (value === undefined) continue;
    if (name === 'name') value = `${String(value)}-${index}`;
    if (option.type === 'boolean') args.push(value ? `--${name}` : `--no-${name}`);
    else args.push(`--${name}=${String(value)}`);
  }
  return args;
}

/** The environment of an instance: the supervisor's, without what would make it a supervisor too. */
export function instanceEnv(envPrefix: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of SUPERVISOR_OPTIONS) delete copy[`${envPrefix}_${name.toUpperCase().replace(/-/g, '_')}`];
  return copy;
}

/**
 * `testworker --instances N`: supervises N copies of this very command line (minus the
 * supervisor's options) until SIGTERM or SIGINT has drained them; resolves with the exit code.
 */
export async function superviseFromCli(
  spec: { options: Record<string, { type?: string }>; envPrefix: string },
  argv: Record<string, unknown> & { instances?: number; maxRestarts: number },
  logger: Logger,
): Promise<number> {
  const instances = argv.instances ?? 1;
  if (!Number.isInteger(instances) || instances < 1) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--instances takes a whole number >= 1, got ${String(argv.instances)}`);
  }
  if (!Number.isInteger(argv.maxRestarts) || argv.maxRestarts < 0) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--max-restarts takes a whole number >= 0, got ${argv.maxRestarts}`);
  }
  const supervisor = new Supervisor({
    instances,
    command: process.execPath,
    args: (index) => [...process.execArgv, process.argv[1]!, ...instanceArgs(spec.options, argv, index)],
    env: instanceEnv(spec.envPrefix),
    maxRestarts: argv.maxRestarts,
    logger,
  });
  const onSignal = (signal: NodeJS.Signals) => supervisor.stop(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  supervisor.start();
  try {
    return await supervisor.done;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
