import { DEFAULT_WORKER_ENDPOINT } from '@testcloud/protocol';
import type { OptionTable } from '@testcloud/protocol/cli-kit';

export const workerCli = {
  program: 'testworker',
  usage: '$0 [options]',
  summary:
    "Connects to a broker's worker endpoint, announces itself with READY and runs the shell commands it is sent " +
    '(sh -c), returning each one\'s exit code, stdout, stderr and duration.',
  envPrefix: 'TESTWORKER',
  options: {
    broker: { alias: 'b', type: 'string', default: DEFAULT_WORKER_ENDPOINT, describe: "the broker's worker endpoint" },
    concurrency: { alias: 'c', type: 'string', default: '1', describe: 'commands run at once (a number, or "auto" for the number of CPUs)' },
    cwd: { type: 'string', describe: 'directory commands run in (default: the current one)' },
    'max-output': { type: 'string', default: '1MiB', describe: 'bytes kept per output stream of each command; the rest is dropped and counted' },
    name: { type: 'string', describe: 'name shown in results and broker logs (default: host:pid)' },
    weight: { type: 'number', default: 1, describe: 'preference over workers with as many free slots (2 = twice as preferred)' },
    'max-message-size': { type: 'string', default: '16MiB', describe: 'largest message accepted from the broker' },
    verbose: { alias: 'v', type: 'boolean', default: false, describe: 'stack traces on errors' },
  } satisfies OptionTable,
  examples: [
    ['$0 &', 'one slot, connected to tcp://127.0.0.1:2225'],
    ['$0 --broker tcp://broker-host:2225 -c auto', 'one slot per CPU on this host'],
  ] as Array<[string, string]>,
};

export interface WorkerArgs {
  broker: string;
  concurrency: string;
  cwd?: string;
  maxOutput: string;
  name?: string;
  weight: number;
  maxMessageSize: string;
  verbose: boolean;
}
