import { availableParallelism } from 'node:os';
import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { clientCli, type ClientArgs } from './cli-options.js';

async function main(args: ClientArgs): Promise<number> {
  const [{ TestcloudError, parseDuration, parseSize, curveFromFlags }, { Chalk }, { HumanReporter }, { readCommands }, { runCommands }] = await Promise.all([
    import('@testcloud/protocol'),
    import('chalk'),
    import('./human-reporter.js'),
    import('./command-reader.js'),
    import('./run.js'),
  ]);
  const badOption = (message: string) => new TestcloudError('TESTCLOUD_CLIENT_BAD_OPTION', message);
  const connectTimeout = parseDuration(args.connectTimeout);
  if (!Number.isInteger(args.window) || args.window < 1) throw badOption(`--window must be a whole number >= 1, got ${args.window}`);
  if (!Number.isInteger(args.retries) || args.retries < 0) throw badOption(`--retries must be a whole number >= 0, got ${args.retries}`);
  const timeout = args.timeout === undefined ? 0 : parseDuration(args.timeout);
  const idleTimeout = args.idleTimeout === undefined ? 0 : parseDuration(args.idleTimeout);
  const brokerTimeout = parseDuration(args.brokerTimeout);
  const curve = curveFromFlags(args.key, args.brokerKey);
  if (curve && args.local !== undefined) throw badOption('--local runs an embedded pool in this process: it takes no --key or --broker-key');
  let slots: number | undefined;
  if (args.local !== undefined) {
    slots = args.local === '' ? availableParallelism() : Number(args.local);
    if (!Number.isInteger(slots) || slots < 1) throw badOption(`--local takes a number of worker slots >= 1, got "${args.local}"`);
  }

  const useColor = args.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR);
  const reporter = new HumanReporter(process.stdout, new Chalk({ level: useColor ? 1 : 0 }), process.stderr);

  let pool: Awaited<ReturnType<typeof import('./local-pool.js').startLocalPool>> | undefined;
  if (slots !== undefined) {
    const { startLocalPool } = await import('./local-pool.js');
    pool = await startLocalPool({ slots, maxOutput: parseSize(args.maxOutput), verbose: args.verbose, ...(args.cwd ? { cwd: args.cwd } : {}) });
  }
  // Ctrl-C: say goodbye so the broker cancels our jobs on every worker, then exit 130.
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  process.once('SIGTERM', () => interrupt.abort());
  try {
    const outcome = await runCommands({
      broker: pool?.endpoint ?? args.broker,
      commands: readCommands(process.stdin),
      connectTimeout,
      brokerTimeout,
      timeout,
      idleTimeout,
      retries: args.retries,
      signal: interrupt.signal,
      ...(curve ? { curve } : {}),
      window: args.window,
      observer: {
        connected: (endpoint) => reporter.connected(pool ? `an embedded pool with ${slots} worker slot(s)` : endpoint),
        counted: (total) => reporter.counted(total),
        result: (result) => reporter.result(result),
        warning: (message) => reporter.warning(message),
      },
    });
    reporter.summary(outcome);
    return outcome.failed > 0 ? EXIT.failed : EXIT.ok;
  } catch (error) {
    if (interrupt.signal.aborted) {
      process.stderr.write('testclient: interrupted; the broker cancels the commands still running\n');
      return EXIT.interrupted;
    }
    throw error;
  } finally {
    await pool?.stop();
  }
}

void runCli<ClientArgs>({ ...clientCli, main });
