export { runCommands, isFailure, type RunOptions, type RunSummary, type RunObserver, type PlannedCommand } from './run.js';
export { HaltPolicy } from './halt-policy.js';
export { readCommands } from './command-reader.js';
export { HumanReporter, formatDuration } from './human-reporter.js';
export { CoalescedOutput } from './coalesced-output.js';
export { startLocalPool, type LocalPool, type LocalPoolOptions } from './local-pool.js';
export { ClientError, type ClientErrorCode } from './errors.js';
export { clientCli } from './cli-options.js';
