import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { brokerCli, type BrokerArgs } from './cli-options.js';

async function main(args: BrokerArgs): Promise<number> {
  const [{ parseSize, parseDuration, createLogger, TestcloudError }, { Broker }] = await Promise.all([import('@testcloud/protocol'), import('./broker.js')]);
  for (const [flag, value] of [['--liveness', args.liveness], ['--max-lost', args.maxLost]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new TestcloudError('TESTCLOUD_BAD_OPTION', `${flag} must be a whole number >= 1, got ${value}`);
  }
  const log = createLogger('testbroker');
  const broker = new Broker({
    clientEndpoint: args.clients,
    workerEndpoint: args.workers,
    insecure: args.insecure,
    maxMessageSize: parseSize(args.maxMessageSize),
    heartbeat: parseDuration(args.heartbeat),
    liveness: args.liveness,
    ackTimeout: parseDuration(args.ackTimeout),
    maxLost: args.maxLost,
    logger: log,
  });
  const endpoints = await broker.start();
  log.info(`listening for clients on ${endpoints.client} and for workers on ${endpoints.worker} (broker ${broker.id})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info(`${signal}: shutting down`);
  await broker.stop();
  return EXIT.ok;
}

void runCli<BrokerArgs>({ ...brokerCli, main });
