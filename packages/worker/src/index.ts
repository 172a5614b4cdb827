export { Worker, DEFAULT_MAX_OUTPUT, type WorkerOptions } from './worker.js';
export { WorkerError, type WorkerErrorCode } from './errors.js';
export type { Executor, ExecRequest, ExecOutcome } from './executor.js';
export { ExecaExecutor } from './execa-executor.js';
export { workerCli } from './cli-options.js';
