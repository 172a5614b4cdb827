import { EXIT, runCli } from '@testcloud/protocol/cli-kit';
import { brokerCli, type BrokerArgs } from './cli-options.js';

async function main(args: BrokerArgs): Promise<number> {
  const [{ parseSize, createLogger }, { Broker }] = await Promise.all([import('@testcloud/protocol'), import('./broker.js')]);
  const log = createLogger('testbroker');
  const broker = new Broker({
    clientEndpoint: args.clients,
    workerEndpoint: args.workers,
    insecure: args.insecure,
    maxMessageSize: parseSize(args.maxMessageSize),
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
