#!/usr/bin/env node --expose-gc
/**
 * Figure 4a: what a queued job costs the broker. Starts a Broker in this process with no
 * worker, measures its resident size idle, submits JOBS commands ("true") from a raw Dealer in
 * SUBMIT batches of 512, waits until the broker holds them all, and measures again (after
 * full GCs). Prints one JSON line: { jobs, idleRss, fullRss, perJob, heapPerJob, queueMs }.
 *
 *   node --expose-gc test/bench/probes/broker-memory.js [jobs]
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = new URL('../../../', import.meta.url);
const require = createRequire(fileURLToPath(new URL('packages/broker/package.json', root)));
const { Dealer } = require('zeromq');
const { Broker } = await import(new URL('packages/broker/dist/index.js', root));
const { encode, createLogger } = await import(new URL('packages/protocol/dist/index.js', root));

const jobs = Number(process.argv[2] ?? 1_000_000);
const settle = async () => {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const broker = new Broker({
  clientEndpoint: 'tcp://127.0.0.1:*',
  workerEndpoint: 'tcp://127.0.0.1:*',
  maxQueued: jobs + 1,
  logger: createLogger('testbroker', { quiet: true }),
});
const { client } = await broker.start();
const dealer = new Dealer({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
dealer.connect(client);
await dealer.send(encode({ type: 'hello', client: 'bench' }));
await dealer.receive(); // OK
await settle();
const idle = process.memoryUsage();

const started = performance.now();
for (let id = 0; id < jobs; id += 512) {
  const batch = [];
  for (let i = id; i < Math.min(jobs, id + 512); i++) batch.push({ id: i, cmd: 'true' });
  await dealer.send(encode({ type: 'submit', jobs: batch }));
}
while (broker.queued < jobs) await new Promise((resolve) => setTimeout(resolve, 10));
const queueMs = performance.now() - started;
await settle();
const full = process.memoryUsage();
process.stdout.write(
  `${JSON.stringify({
    jobs,
    idleRss: idle.rss,
    fullRss: full.rss,
    perJob: (full.rss - idle.rss) / jobs,
    heapPerJob: (full.heapUsed - idle.heapUsed) / jobs,
    queueMs,
  })}\n`,
);
dealer.close();
await broker.stop();
process.exit(0);
