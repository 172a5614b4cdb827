import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { workerCli, type WorkerArgs } from './cli-options.js';
import { WorkerError } from './errors.js';

async function main(args: WorkerArgs): Promise<number> {
  const slots = args.concurrency === 'auto' ? availableParallelism() : Number(args.concurrency);
  if (!Number.isInteger(slots) || slots < 1) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--concurrency takes a number >= 1 or "auto", got "${args.concurrency}"`);
  }
  if (!(args.weight > 0)) throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--weight must be a number > 0, got ${args.weight}`);
  if (args.cwd !== undefined && !isDirectory(args.cwd)) {
    throw new WorkerError('TESTCLOUD_WORKER_BAD_OPTION', `--cwd ${args.cwd} is not a directory`);
  }
  const [{ parseSize, createLogger }, { Worker }] = await Promise.all([import('@testcloud/protocol'), import('./worker.js')]);
  const log = createLogger('testworker');
  const worker = new Worker({
    broker: args.broker,
    slots,
    maxOutput: parseSize(args.maxOutput),
    maxMessageSize: parseSize(args.maxMessageSize),
    weight: args.weight,
    logger: log,
    ...(args.cwd !== undefined ? { cwd: args.cwd } : {}),
    ...(args.name !== undefined ? { name: args.name } : {}),
  });
  worker.start();
  log.info(`${worker.name} started with ${slots} slot(s), connecting to ${args.broker}`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info(`${signal}: leaving the broker`);
  await worker.stop(`worker received ${signal}`);
  return EXIT.ok;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

void runCli<WorkerArgs>({ ...workerCli, main });
