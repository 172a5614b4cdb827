import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { workerCli, type WorkerArgs } from './cli-options.js';
import { WorkerError } from './errors.js';
import { tellSupervisor, watchSupervisor } from './supervisor.js';

async function main(args: WorkerArgs): Promise<number> {
  const slots = args.concurrency === 'auto' ? availableParallelism() : Number(args.concurrency);
  if (!Number.isInteger(slots) || slots < 1) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--concurrency takes a number >= 1 or "auto", got "${args.concurrency}"`);
  }
  if (!(args.weight > 0)) throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--weight must be a number > 0, got ${args.weight}`);
  const prefetch = args.prefetch === undefined ? undefined : Number(args.prefetch);
  if (!/^\d+$/.test(args.prefetch ?? '0') || (prefetch ?? 0) > 4096) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--prefetch takes a whole number from 0 to 4096, got "${args.prefetch}"`);
  }
  if (args.cwd !== undefined && !isDirectory(args.cwd)) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--cwd ${args.cwd} is not a directory`);
  }
  const [{ parseSize, createLogger, curveFromFlags }, { Worker }] = await Promise.all([import('@testcloud/protocol'), import('./worker.js')]);
  const curve = curveFromFlags(args.key, args.brokerKey);
  const { hostOptionsFromArgs } = await import('./load-options.js');
  const log = createLogger('testworker');
  // Checked here so that a supervisor with a bad option fails before it starts anything.
  const host = hostOptionsFromArgs(args, log);
  if (args.instances !== undefined || args.supervise) {
    const { superviseFromCli } = await import('./supervisor.js');
    return superviseFromCli(workerCli, args as unknown as Parameters<typeof superviseFromCli>[1], createLogger('testworker supervisor'));
  }
  const { createExecutor } = await import('./executors.js');
  const executor = await createExecutor(args.executor, { slots, onFallback: (reason) => log.warn(reason) });
  // Its helper processes start while we connect, not when the first job comes.
  executor.prestart?.(args.cwd ?? process.cwd());
  const worker = new Worker({
    broker: args.broker,
    slots,
    executor,
    maxOutput: parseSize(args.maxOutput),
    maxMessageSize: parseSize(args.maxMessageSize),
    weight: args.weight,
    ...(prefetch !== undefined ? { prefetch } : {}),
    liveness: args.liveness,
    host,
    logger: log,
    ...(curve ? { curve } : {}),
    ...(args.cwd !== undefined ? { cwd: args.cwd } : {}),
    ...(args.name !== undefined ? { name: args.name } : {}),
  });
  // Handle signals before the first line: a script may stop us as soon as it reads it.
  // The first SIGTERM or SIGINT drains (finish, report, leave, exit 0); a second hands the
  // running jobs back to the broker and exits 130.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signals++ === 0) {
      log.info(`${signal}: finishing the running jobs, then leaving the broker (send it again to hand them back and exit now)`);
      worker.drain(`worker received ${signal}`);
    } else {
      log.info(`${signal} again: cancelling the running jobs and handing them back`);
      void worker.abandon(`worker received ${signal} twice`);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  watchSupervisor(() => worker.drain('its supervisor has gone'));
  worker.start();
  log.info(`${worker.name} started with ${slots} slot(s), connecting to ${args.broker}`);
  // Whatever handles the executor lets go of while it shuts down, live until the worker has left.
  const keepAlive = setInterval(() => {}, 60_000);
  const reason = await worker.finished;
  clearInterval(keepAlive);
  log.info(`left the broker: ${reason}`);
  tellSupervisor(reason);
  return signals > 1 ? EXIT.interrupted : EXIT.ok;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

void runCli<WorkerArgs>({ ...workerCli, main });
