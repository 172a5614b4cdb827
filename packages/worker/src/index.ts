export { Worker, DEFAULT_MAX_OUTPUT, type WorkerOptions } from './worker.js';
export { WorkerError, type WorkerErrorCode } from './errors.js';
export type { Executor, ExecRequest, ExecOutcome } from './executor.js';
export { ExecaExecutor } from './execa-executor.js';
export { LauncherExecutor } from './launcher-executor.js';
export { NoopExecutor } from './noop-executor.js';
export { createExecutor, EXECUTOR_KINDS, type ExecutorKind } from './executors.js';
export { workerCli } from './cli-options.js';
