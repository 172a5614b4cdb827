import { randomBytes } from 'node:crypto';
import { Broker } from '@testcloud/broker';
import { createLogger } from '@testcloud/protocol';
import { Worker, createExecutor, type ExecutorKind } from '@testcloud/worker';

export interface LocalPoolOptions {
  slots: number;
  cwd?: string;
  maxOutput?: number;
  /** How the worker starts commands (default: fast). */
  executor?: ExecutorKind;
  verbose?: boolean;
}

export interface LocalPool {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * `testclient --local N`: a broker and one worker with N slots inside this process, passing
 * messages as objects (mem:// endpoints), so the whole toolkit runs with nothing started by hand.
 */
export async function startLocalPool(options: LocalPoolOptions): Promise<LocalPool> {
  const quiet = !options.verbose;
  const workerLog = createLogger('testworker', { quiet });
  const executor = await createExecutor(options.executor ?? 'fast', { slots: options.slots, onFallback: (reason) => workerLog.warn(reason) });
  // The executor's helper processes start (on the other core) while the broker and the worker
  // start here, so that the first jobs do not wait for them.
  executor.prestart?.(options.cwd ?? process.cwd());
  const tag = randomBytes(6).toString('hex');
  const broker = new Broker({
    clientEndpoint: `mem://testcloud-${tag}-clients`,
    workerEndpoint: `mem://testcloud-${tag}-workers`,
    inProcess: true,
    logger: createLogger('testbroker', { quiet }),
  });
  const endpoints = await broker.start();
  const worker = new Worker({
    broker: endpoints.worker,
    slots: options.slots,
    executor,
    name: `local:${process.pid}`,
    logger: workerLog,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.maxOutput !== undefined ? { maxOutput: options.maxOutput } : {}),
  });
  worker.start();
  return {
    endpoint: endpoints.client,
    async stop() {
      await worker.stop('local run finished');
      await broker.stop();
    },
  };
}
