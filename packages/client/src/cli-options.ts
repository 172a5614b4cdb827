import { DEFAULT_CLIENT_ENDPOINT } from '@testcloud/protocol';
import type { OptionTable } from '@testcloud/protocol/cli-kit';

export const clientCli = {
  program: 'testclient',
  usage: '$0 [options] < commands.txt',
  summary:
    'Reads shell commands from stdin, one per line, runs them on the workers of a testcloud broker (or on an ' +
    'embedded pool with --local) and prints each result as it arrives, a summary and a hash of all results. ' +
    'Exits 0 when every command passed, 1 when any failed, 2 on a usage or connection error.',
  envPrefix: 'TESTCLIENT',
  options: {
    broker: { alias: 'b', type: 'string', default: DEFAULT_CLIENT_ENDPOINT, describe: "the broker's client endpoint" },
    local: {
      type: 'string',
      describe: 'run an embedded broker and N worker slots in this process instead of connecting to a broker (N defaults to the number of CPUs)',
    },
    'connect-timeout': { type: 'string', default: '5s', describe: 'give up when the broker has not answered within this time' },
    timeout: { type: 'string', describe: 'kill a command (its whole process group) that runs longer than this, e.g. 30s or 5m; it counts as failed' },
    'idle-timeout': { type: 'string', describe: 'kill a command that prints nothing for this long' },
    retries: { type: 'number', default: 0, describe: 'run a failed command (non-zero exit or timeout) up to N more times, on another worker where one is free' },
    'broker-timeout': { type: 'string', default: '60s', describe: 'give up when the broker has been unreachable this long in the middle of a run' },
    window: { type: 'number', default: 10000, describe: 'most commands in flight at once; stdin is read only as results free room' },
    cwd: { type: 'string', describe: 'with --local: directory commands run in (default: the current one)' },
    'max-output': { type: 'string', default: '1MiB', describe: 'with --local: bytes kept per output stream of each command' },
    color: { type: 'boolean', describe: 'force colours on or off (default: on when stdout is a terminal and NO_COLOR is unset)' },
    key: { type: 'string', describe: "this client's CURVE key file (from 'testclient keygen'); its .pub must be in the broker's --authorized-clients" },
    'broker-key': { type: 'string', describe: "the broker's public key: its .pub file or the 40-character key itself" },
    verbose: { alias: 'v', type: 'boolean', default: false, describe: 'stack traces on errors; logs of the embedded broker and workers' },
  } satisfies OptionTable,
  examples: [
    ["seq 5 | sed 's/^/echo /' | $0 --local", 'run five commands on an embedded pool'],
    ["find test -name '*.test.js' | sed 's/^/node --test /' | $0 -b tcp://ci-broker:2224", 'fan a test suite out to a shared broker'],
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
  window: number;
  cwd?: string;
  maxOutput: string;
  color?: boolean;
  key?: string;
  brokerKey?: string;
  verbose: boolean;
}
