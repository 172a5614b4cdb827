import { hostname } from 'node:os';
import { BrokerError } from './errors.js';
import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { brokerCli, type BrokerArgs } from './cli-options.js';

const MIN_ACK_TIMEOUT = 100;

async function main(args: BrokerArgs): Promise<number> {
  const [{ parseSize, parseDuration, createLogger, readKeyPair, readAuthorizedKeys, curveFromFlags, checkEndpoint }, { Broker }] = await Promise.all([
    import('@testcloud/protocol'),
    import('./broker.js'),
  ]);
  if (!Number.isInteger(args.maxQueued) || args.maxQueued < 1) throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', `--max-queued must be a whole number >= 1, got ${args.maxQueued}`);
  if (args.key === undefined && (args.authorizedClients !== undefined || args.authorizedWorkers !== undefined)) {
    throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', '--authorized-clients and --authorized-workers need --key: the broker authenticates peers only over CURVE');
  }
  if (args.key !== undefined && (args.authorizedClients === undefined || args.authorizedWorkers === undefined)) {
    throw new BrokerError(
      'TESTCLOUD_BROKER_BAD_OPTION',
      '--key needs --authorized-clients FILE and --authorized-workers FILE: the public keys allowed on each side (an empty file allows nobody)',
    );
  }
  const readAllowLists = () => ({ clients: readAuthorizedKeys(args.authorizedClients!), workers: readAuthorizedKeys(args.authorizedWorkers!) });
  const security = args.key !== undefined ? { keyPair: readKeyPair(args.key), allow: readAllowLists() } : undefined;
  for (const [flag, value] of [['--liveness', args.liveness], ['--max-lost', args.maxLost]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', `${flag} must be a whole number >= 1, got ${value}`);
  }
  // 0 would expire every peer at once; past 2^31-1 ms Node's timers fire at once instead.
  for (const [flag, text] of [['--heartbeat', args.heartbeat], ['--ack-timeout', args.ackTimeout]] as const) {
    const ms = parseDuration(text);
    if (ms < 1 || ms > 2 ** 31 - 1) throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', `${flag} must be between 1ms and 596h, got ${text}`);
  }
  // Workers confirm a job up to 10 ms after it starts (a shorter one is confirmed by its RESULT).
  if (parseDuration(args.ackTimeout) < MIN_ACK_TIMEOUT) {
    throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', `--ack-timeout must be at least ${MIN_ACK_TIMEOUT}ms, got ${args.ackTimeout}`);
  }
  const log = createLogger('testbroker');
  const broker = new Broker({
    clientEndpoint: args.clients,
    workerEndpoint: args.workers,
    insecure: args.insecure,
    maxQueued: args.maxQueued,
    ...(security ? { security } : {}),
    maxMessageSize: parseSize(args.maxMessageSize),
    heartbeat: parseDuration(args.heartbeat),
    liveness: args.liveness,
    ackTimeout: parseDuration(args.ackTimeout),
    maxLost: args.maxLost,
    logger: log,
  });
  // Handle signals before saying where we listen: a script may stop us as soon as it reads that.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const upstreamCurve = curveFromFlags(args.upstreamKey, args.upstreamBrokerKey);
  if (upstreamCurve && args.upstream === undefined) throw new BrokerError('TESTCLOUD_BROKER_BAD_OPTION', '--upstream-key and --upstream-broker-key need --upstream');
  // Before listening: a bad --upstream must not leave a broker half started.
  if (args.upstream !== undefined) checkEndpoint(args.upstream);
  const endpoints = await broker.start();
  log.info(`listening for clients on ${endpoints.client} and for workers on ${endpoints.worker} (broker ${broker.id})`);
  if (security) {
    log.info(`CURVE on: public key ${security.keyPair.publicKey}; ${security.allow.clients.size} client and ${security.allow.workers.size} worker key(s) allowed`);
    process.on('SIGHUP', () => {
      try {
        const allow = readAllowLists();
        broker.reloadAllowLists(allow);
        log.info(`SIGHUP: re-read allow-lists: ${allow.clients.size} client and ${allow.workers.size} worker key(s) allowed`);
      } catch (error) {
        log.warn(`SIGHUP: kept the old allow-lists: ${(error as Error).message}`);
      }
    });
  }
  let upstream: import('./upstream.js').Upstream | undefined;
  if (args.upstream !== undefined) {
    const { Upstream } = await import('./upstream.js');
    upstream = new Upstream(broker, {
      endpoint: args.upstream,
      name: args.upstreamName ?? `broker@${hostname()}:${process.pid}`,
      logger: log,
      ...(upstreamCurve ? { curve: upstreamCurve } : {}),
    });
    upstream.start();
  }
  const signal = await stopSignal;
  log.info(`${signal}: shutting down`);
  await upstream?.stop();
  await broker.stop();
  return EXIT.ok;
}

void runCli<BrokerArgs>({ ...brokerCli, main });
