import { fstatSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isAbsolute } from 'node:path';
import { Chalk } from 'chalk';
import { curveFromFlags, parseDuration, parseSize } from '@testcloud/protocol';
import { EXIT } from '@testcloud/protocol/cli-kit';
import type { ClientArgs } from './cli-options.js';
import { readCommands } from './command-reader.js';
import { ClientError } from './errors.js';
import { HaltPolicy } from './halt-policy.js';
import { limitHeapGrowth } from './heap.js';
import { jobEnv } from './job-env.js';
import type { LocalPool } from './local-pool.js';
import { runCommands } from './run.js';
import { RunSession } from './run-session.js';

/**
 * What testclient does once its options are parsed: checks them, starts the embedded pool for
 * --local, runs the commands and reports. Not loaded for --help or --version alone; bundled with
 * yargs into one file by `npm run build` (see cli.cts and cli-run.ts).
 */
export async function main(args: ClientArgs): Promise<number> {
  // Loads while the options are checked; only --local needs the broker and the worker.
  const localPool = args.local !== undefined ? import('./local-pool.js') : undefined;
  localPool?.catch(() => {}); // awaited below, unless an option is refused first
  const badOption = (message: string) => new ClientError('TESTCLOUD_CLIENT_BAD_OPTION', message);
  const connectTimeout = parseDuration(args.connectTimeout);
  if (!Number.isInteger(args.window) || args.window < 1) throw badOption(`--window must be a whole number >= 1, got ${args.window}`);
  if (!Number.isInteger(args.retries) || args.retries < 0) throw badOption(`--retries must be a whole number >= 0, got ${args.retries}`);
  const timeout = args.timeout === undefined ? 0 : parseDuration(args.timeout);
  const idleTimeout = args.idleTimeout === undefined ? 0 : parseDuration(args.idleTimeout);
  const brokerTimeout = parseDuration(args.brokerTimeout);
  const maxMessageSize = parseSize(args.maxMessageSize);
  const curve = curveFromFlags(args.key, args.brokerKey);
  if (curve && args.local !== undefined) throw badOption('--local runs an embedded pool in this process: it takes no --key or --broker-key');
  let slots: number | undefined;
  if (args.local !== undefined) {
    slots = args.local === '' ? availableParallelism() : Number(args.local);
    if (!Number.isInteger(slots) || slots < 1) throw badOption(`--local takes a number of worker slots >= 1, got "${args.local}"`);
  }
  if (args.maxFailures !== undefined && (!Number.isInteger(args.maxFailures) || args.maxFailures < 1)) {
    throw badOption(`--max-failures must be a whole number >= 1, got ${args.maxFailures}`);
  }
  if (args.failFast && args.maxFailures !== undefined && args.maxFailures !== 1) throw badOption('--fail-fast means --max-failures 1: give one or the other');
  const halt = args.failFast ? new HaltPolicy(1) : args.maxFailures !== undefined ? new HaltPolicy(args.maxFailures) : undefined;
  if ((args.resume || args.resumeFailed) && args.joblog === undefined) throw badOption('--resume and --resume-failed read the job log: give --joblog FILE');
  let env: ReturnType<typeof jobEnv>;
  try {
    env = jobEnv(args.env ?? []);
  } catch (error) {
    throw badOption((error as Error).message);
  }
  // With --local, --cwd is where the embedded worker runs; with a broker, each job's directory
  // under its worker's --cwd, which the worker checks (and so do we, for a clearer message).
  const jobCwd = slots === undefined ? args.cwd : undefined;
  if (jobCwd !== undefined && isAbsolute(jobCwd)) throw badOption(`--cwd ${jobCwd} is absolute: with a broker it is relative to each worker's --cwd`);

  // A reader that goes away (`| head`) does not stop the run: the job log, JUnit report and
  // timings are still written, and the exit status still says how the commands went.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') process.stderr.write(`testclient: cannot write to stdout: ${error.message}\n`);
  });
  const useColor = args.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  const session = new RunSession(readCommands(process.stdin), {
    stdout: process.stdout,
    stderr: process.stderr,
    color: new Chalk({ level: useColor ? 1 : 0 }),
    json: args.json,
    quiet: args.quiet,
    tag: args.tag,
    stderrMode: args.stderr,
    keepOrder: args.keepOrder,
    // Not when stdout is a pipe (`| tee`): its writes land on the terminal later, past the line.
    progress: args.progress && process.stderr.isTTY === true && (process.stdout.isTTY === true || !isPipe(1)),
    ...(args.timings !== undefined ? { timingsFile: args.timings } : {}),
    ...(args.junit !== undefined ? { junitFile: args.junit } : {}),
    ...(args.joblog !== undefined ? { joblogFile: args.joblog } : {}),
    ...(args.resumeFailed ? { resume: 'passed' as const } : args.resume ? { resume: 'finished' as const } : {}),
  });

  let pool: LocalPool | undefined;
  if (slots !== undefined && localPool) {
    pool = await (await localPool).startLocalPool({ slots, maxOutput: parseSize(args.maxOutput), executor: args.executor, verbose: args.verbose, ...(args.cwd ? { cwd: args.cwd } : {}) });
  }
  // Ctrl-C, or SIGTERM when a CI job is cancelled: the reports are written at once, as of this
  // moment (a second Ctrl-C or a SIGKILL may follow), then we say goodbye so that the broker
  // cancels our jobs on every worker, and exit 130.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    session.interrupt(signal);
    interrupt.abort(signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interrupted = () => {
    process.stdin.destroy(); // a producer that never ends must not keep us alive
    process.stderr.write('testclient: interrupted; the broker cancels the commands still running\n');
    return EXIT.interrupted;
  };
  // Now that what the run needs is loaded (see heap.ts).
  limitHeapGrowth();
  try {
    const outcome = await runCommands({
      broker: pool?.endpoint ?? args.broker,
      commands: session.commands(),
      connectTimeout,
      brokerTimeout,
      maxMessageSize,
      timeout,
      idleTimeout,
      retries: args.retries,
      ...(env ? { env } : {}),
      ...(jobCwd !== undefined ? { cwd: jobCwd } : {}),
      ...(halt ? { halt } : {}),
      signal: interrupt.signal,
      ...(curve ? { curve } : {}),
      window: args.window,
      observer: {
        ...session.observer,
        connected: (endpoint) => session.observer.connected?.(pool ? `an embedded pool with ${slots} worker slot(s)` : endpoint),
      },
    });
    // The signal came as the last result did: the reports already say it was interrupted.
    if (interrupt.signal.aborted) return interrupted();
    // A halted run leaves stdin unread: let go of it, or a producer that never ends keeps us alive.
    if (outcome.halted !== null) process.stdin.destroy();
    session.finish(outcome);
    return outcome.failed > 0 ? EXIT.failed : EXIT.ok;
  } catch (error) {
    if (interrupt.signal.aborted) return interrupted();
    throw error;
  } finally {
    session.close();
    await pool?.stop();
  }
}

function isPipe(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return true;
  }
}
