import { DEFAULT_WORKER_ENDPOINT, type OptionTable } from '@testcloud/protocol/cli-kit';

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
    prefetch: {
      type: 'string',
      describe: 'jobs taken beyond --concurrency while jobs are short (under ~50 ms on average), each started the moment a slot frees (default: 8 per slot; 0 = none)',
    },
    'max-message-size': { type: 'string', default: '16MiB', describe: 'largest message accepted from the broker' },
    liveness: { type: 'number', default: 3, describe: "missed broker heartbeats (at the broker's interval) before reconnecting, with backoff from 1s to 32s" },
    'max-load': { type: 'number', describe: 'take no new job while the 1-minute load average per CPU is above this (e.g. 1.5)' },
    'max-cpu': { type: 'number', describe: 'take no new job while the CPUs are busier than this percentage over the last few seconds' },
    'min-free-mem': { type: 'string', describe: 'take no new job while available memory is below this (MiB, e.g. 512 or 2GiB, or a percentage: 10%)' },
    'pause-free-mem': { type: 'string', describe: 'below this much available memory, pause running jobs (SIGSTOP), newest first; resume them when it recovers' },
    'kill-free-mem': { type: 'string', describe: 'below this much available memory, kill the newest job and hand it back to the broker to run elsewhere' },
    'load-interval': { type: 'string', default: '1s', describe: "how often the host's load and memory are sampled" },
    'load-readings': { type: 'string', describe: 'read load, cpu, freeMem and totalMem from this JSON file instead of /proc (for tests)' },
    nice: { type: 'number', describe: 'run commands at this niceness (0-19; lower needs root)' },
    'max-jobs': { type: 'number', describe: 'after taking this many jobs, finish them and exit (a supervisor starts a fresh worker)' },
    'max-running-time': { type: 'string', describe: 'after running this long (e.g. 1h), finish the running jobs and exit' },
    instances: { type: 'number', describe: 'supervise this many worker processes: restart any that crash or recycle; SIGTERM drains them all' },
    supervise: { type: 'boolean', default: false, describe: 'run the worker under a supervisor (one instance unless --instances says more)' },
    'max-restarts': { type: 'number', default: 5, describe: 'with --instances: restarts of a crashing instance allowed per minute before giving up on it' },
    key: { type: 'string', describe: "this worker's CURVE key file (from 'testworker keygen'); its .pub must be in the broker's --authorized-workers" },
    'broker-key': { type: 'string', describe: "the broker's public key: its .pub file or the 40-character key itself" },
    executor: {
      type: 'string',
      choices: ['fast', 'launcher', 'execa', 'noop'],
      default: 'fast',
      describe:
        'how commands are started: fast (one persistent python3 posix_spawns them; without python3 >= 3.8, launcher), launcher (forked by a persistent bash per slot), execa (spawned by Node per command), noop (run nothing: benchmarks only)',
    },
    verbose: { alias: 'v', type: 'boolean', default: false, describe: 'stack traces on errors' },
  } satisfies OptionTable,
  examples: [
    ['$0 &', 'one slot, connected to tcp://127.0.0.1:2225'],
    ['$0 --broker tcp://broker-host:2225 -c auto', 'one slot per CPU on this host'],
    ['$0 -c auto --max-load 1 --pause-free-mem 5% --kill-free-mem 2% --nice 10', 'share a desktop: keep out of its way'],
    ['$0 --instances 4 --max-jobs 100', 'four supervised workers, each replaced after 100 jobs'],
  ] as Array<[string, string]>,
};

export interface WorkerArgs {
  broker: string;
  concurrency: string;
  cwd?: string;
  maxOutput: string;
  name?: string;
  weight: number;
  prefetch: string | undefined;
  maxMessageSize: string;
  liveness: number;
  maxLoad?: number;
  maxCpu?: number;
  minFreeMem?: string;
  pauseFreeMem?: string;
  killFreeMem?: string;
  loadInterval: string;
  loadReadings?: string;
  nice?: number;
  maxJobs?: number;
  maxRunningTime?: string;
  instances?: number;
  supervise: boolean;
  maxRestarts: number;
  key?: string;
  brokerKey?: string;
  executor: 'fast' | 'launcher' | 'execa' | 'noop';
  verbose: boolean;
}
