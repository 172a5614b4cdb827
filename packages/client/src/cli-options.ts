import { DEFAULT_CLIENT_ENDPOINT, type OptionTable } from '@testcloud/protocol/cli-kit';

export const clientCli = {
  program: 'testclient',
  usage: '$0 [options] < commands.txt',
  summary:
    'Reads shell commands from stdin, one per line, runs them on the workers of a testcloud broker (or on an ' +
    'embedded pool with --local) and prints each result as it arrives, a summary and a hash of all results. ' +
    'Exits 0 when every command passed, 1 when any failed, 2 on a usage or connection error, 130 when interrupted.',
  envPrefix: 'TESTCLIENT',
  options: {
    broker: { alias: 'b', type: 'string', default: DEFAULT_CLIENT_ENDPOINT, describe: "the broker's client endpoint" },
    local: {
      type: 'string',
      describe: 'run an embedded broker and N worker slots in this process instead of connecting to a broker (N defaults to the number of CPUs)',
    },
    'connect-timeout': { type: 'string', default: '5s', describe: 'give up when the broker has not answered within this time' },
    timeout: { type: 'string', describe: 'kill a command (its whole process group) that runs longer than this, e.g. 30s or 5m (time a worker holds it paused for memory does not count); it counts as failed' },
    'idle-timeout': { type: 'string', describe: 'kill a command that prints nothing for this long' },
    retries: { type: 'number', default: 0, describe: 'run a failed command (non-zero exit or timeout) up to N more times, on another worker where one is free' },
    'broker-timeout': { type: 'string', default: '60s', describe: 'give up when the broker has been unreachable this long in the middle of a run' },
    'max-message-size': { type: 'string', default: '256MiB', describe: "largest message accepted from the broker; keep it above the broker's and workers' --max-message-size" },
    window: { type: 'number', default: 10000, describe: 'most commands in flight at once; stdin is read only as results free room' },
    cwd: {
      type: 'string',
      describe:
        "directory commands run in, relative to each worker's --cwd (an absolute path or one leading outside it fails the command); with --local, any directory (default: the current one)",
    },
    env: {
      type: 'string',
      array: true,
      describe: 'send this variable with every command: NAME forwards its value here, NAME=VALUE sets one (repeatable)',
    },
    timings: {
      type: 'string',
      describe: 'keep each command\'s duration in this JSON file (a moving average over runs) and start the longest first: see docs/ci.md',
    },
    junit: { type: 'string', describe: 'write a JUnit XML report to this file: a testcase per command, with its failure and output' },
    json: { type: 'boolean', default: false, describe: 'print one JSON object per result and a summary object (NDJSON) instead of the human format' },
    progress: {
      type: 'boolean',
      default: true,
      describe: 'show a live status line (done/total, running, failed, elapsed, ETA) on stderr when it is a terminal and stdout is not a pipe; --no-progress hides it',
    },
    'keep-order': { alias: 'k', type: 'boolean', default: false, describe: 'print results in input order, holding back the ones that finish early' },
    tag: { type: 'boolean', default: false, describe: "start each line of a command's output with the command and a tab" },
    quiet: { alias: 'q', type: 'boolean', default: false, describe: 'print only failed commands and the summary' },
    stderr: {
      type: 'string',
      choices: ['on-failure', 'always', 'never'],
      default: 'on-failure',
      describe: "when to print a command's stderr: on-failure, always or never",
    },
    'fail-fast': { type: 'boolean', default: false, describe: 'stop at the first failure: cancel the running commands and skip the rest (exit 1)' },
    'max-failures': { type: 'number', describe: 'stop after N failed commands, like --fail-fast for N = 1' },
    joblog: {
      type: 'string',
      describe: "log each finished command to this file as it ends (GNU parallel's format: start, runtime, exit code, worker, command); started afresh unless resuming",
    },
    resume: { type: 'boolean', default: false, describe: 'with --joblog: skip the commands the job log says have finished, and append to it' },
    'resume-failed': { type: 'boolean', default: false, describe: 'with --joblog: skip the commands the job log says have passed; run the failed ones again' },
    'max-output': { type: 'string', default: '1MiB', describe: 'with --local: bytes kept per output stream of each command' },
    executor: {
      type: 'string',
      choices: ['fast', 'launcher', 'execa', 'noop'],
      default: 'fast',
      describe: 'with --local: how commands are started (see testworker --executor)',
    },
    color: { type: 'boolean', describe: 'force colours on or off (default: on when stdout is a terminal and NO_COLOR is unset)' },
    key: { type: 'string', describe: "this client's CURVE key file (from 'testclient keygen'); its .pub must be in the broker's --authorized-clients" },
    'broker-key': { type: 'string', describe: "the broker's public key: its .pub file or the 40-character key itself" },
    verbose: { alias: 'v', type: 'boolean', default: false, describe: 'stack traces on errors; logs of the embedded broker and workers' },
  } satisfies OptionTable,
  examples: [
    ["seq 5 | sed 's/^/echo /' | $0 --local", 'run five commands on an embedded pool'],
    ["find test -name '*.test.js' | sed 's/^/node --test /' | $0 -b tcp://ci-broker:2224", 'fan a test suite out to a shared broker'],
    [
      "ls test/*.test.js | sed 's/^/node --test /' | $0 -b tcp://ci-broker:2224 --timings .timings.json --junit junit.xml --joblog ci.joblog --resume-failed",
      'a CI job: longest tests first, a JUnit report, and a re-run that only repeats what failed',
    ],
  ] as Array<[string, string]>,
};

export interface ClientArgs {
  broker: string;
  local?: string;
  connectTimeout: string;
  timeout?: string;
  idleTimeout?: string;
  retries: number;
  brokerTimeout: string;
  maxMessageSize: string;
  window: number;
  cwd?: string;
  env?: string[];
  timings?: string;
  junit?: string;
  json: boolean;
  progress: boolean;
  keepOrder: boolean;
  tag: boolean;
  quiet: boolean;
  stderr: 'on-failure' | 'always' | 'never';
  failFast: boolean;
  maxFailures?: number;
  joblog?: string;
  resume: boolean;
  resumeFailed: boolean;
  maxOutput: string;
  executor: 'fast' | 'launcher' | 'execa' | 'noop';
  color?: boolean;
  key?: string;
  brokerKey?: string;
  verbose: boolean;
}
