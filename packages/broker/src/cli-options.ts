import { DEFAULT_CLIENT_ENDPOINT, DEFAULT_WORKER_ENDPOINT, type OptionTable } from '@testcloud/protocol/cli-kit';

export const brokerCli = {
  program: 'testbroker',
  usage: '$0 [options]',
  summary:
    'Queues the commands clients submit and dispatches them to free worker slots, round-robin between clients. ' +
    'Binds loopback by default; binding any other address needs --insecure.',
  envPrefix: 'TESTBROKER',
  options: {
    clients: { alias: 'c', type: 'string', default: DEFAULT_CLIENT_ENDPOINT, describe: 'endpoint clients connect to (tcp://127.0.0.1:* picks a free port)' },
    workers: { alias: 'w', type: 'string', default: DEFAULT_WORKER_ENDPOINT, describe: 'endpoint workers (or downstream brokers) connect to' },
    insecure: { type: 'boolean', default: false, describe: 'allow binding a non-loopback address without authentication (prints a warning)' },
    key: { type: 'string', describe: "the broker's CURVE key file (from 'testbroker keygen'): encrypts and authenticates both endpoints" },
    'authorized-clients': { type: 'string', describe: 'with --key: file of client public keys allowed to submit, one per line with an optional comment; re-read on SIGHUP' },
    'authorized-workers': { type: 'string', describe: 'with --key: file of worker public keys allowed to take jobs; re-read on SIGHUP' },
    'max-queued': { type: 'number', default: 100000, describe: 'most commands one client may have queued or running; clients are told and hold back' },
    'max-message-size': { type: 'string', default: '16MiB', describe: 'largest message accepted from any peer; larger ones are dropped' },
    heartbeat: { type: 'string', default: '1s', describe: 'heartbeat interval, announced to workers and clients (they adopt it)' },
    liveness: { type: 'number', default: 3, describe: 'missed heartbeats after which a worker or client is expired (its jobs requeued or cancelled)' },
    'ack-timeout': { type: 'string', default: '5s', describe: 'a worker that has not started a job (QUEUED) within this time loses it to another worker, not counted as lost (at least 100ms)' },
    'max-lost': { type: 'number', default: 3, describe: 'a job whose worker died this many times while running it is reported failed as "lost"' },
    upstream: { type: 'string', describe: "join another broker's worker endpoint as one worker offering this pool's slots (chained brokers)" },
    'upstream-name': { type: 'string', describe: 'name this broker has among the upstream broker\'s workers (default: broker@host:pid)' },
    'upstream-key': { type: 'string', describe: "with --upstream to a CURVE broker: this broker's key file, whose .pub is in the upstream's --authorized-workers" },
    'upstream-broker-key': { type: 'string', describe: "the upstream broker's public key: its .pub file or the key itself" },
    verbose: { alias: 'v', type: 'boolean', default: false, describe: 'stack traces on errors' },
  } satisfies OptionTable,
  examples: [
    ['$0 &', 'listen on tcp://127.0.0.1:2224 (clients) and tcp://127.0.0.1:2225 (workers)'],
    ['$0 --clients tcp://0.0.0.0:2224 --workers tcp://0.0.0.0:2225 --key keys/broker.key --authorized-clients keys/clients --authorized-workers keys/workers', 'serve other hosts, CURVE-authenticated'],
    ['$0 --clients tcp://0.0.0.0:2224 --workers tcp://0.0.0.0:2225 --insecure', 'serve a trusted network without keys'],
    ['$0 --upstream tcp://central:2225', "also lend this pool's workers to a central broker"],
  ] as Array<[string, string]>,
};

export interface BrokerArgs {
  clients: string;
  workers: string;
  insecure: boolean;
  key?: string;
  authorizedClients?: string;
  authorizedWorkers?: string;
  maxQueued: number;
  maxMessageSize: string;
  heartbeat: string;
  liveness: number;
  ackTimeout: string;
  maxLost: number;
  upstream?: string;
  upstreamName?: string;
  upstreamKey?: string;
  upstreamBrokerKey?: string;
  verbose: boolean;
}
