#!/usr/bin/env node
/**
 * The baseline of figure 3: raw zeromq.js request/reply pairs per second over loopback TCP,
 * pipelined (up to WINDOW in flight), Dealer -> Router -> Dealer, 3-frame messages of about the
 * size of a JOB. Prints one JSON line: { pairs, ms, perSecond }.
 *
 *   node test/bench/probes/raw-zmq.js [pairs] [window]
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(fileURLToPath(new URL('../../../packages/broker/package.json', import.meta.url)));
const { Dealer, Router } = require('zeromq');
const pairs = Number(process.argv[2] ?? 100_000);
const window = Number(process.argv[3] ?? 1000);

const router = new Router({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
await router.bind('tcp://127.0.0.1:*');
const dealer = new Dealer({ sendHighWaterMark: 0, receiveHighWaterMark: 0 });
dealer.connect(router.lastEndpoint);
const echo = (async () => {
  for await (const frames of router) await router.send(frames);
})();

const header = Buffer.from('TCLD\x01');
const type = Buffer.from('JOB');
const body = Buffer.from(JSON.stringify({ jobs: [{ id: 1, cmd: 'true', attempt: 1, timeout: 0, idleTimeout: 0 }] }));
// Warm-up: connect and run a few pairs before timing.
for (let i = 0; i < 100; i++) {
  await dealer.send([header, type, body]);
  await dealer.receive();
}
const started = performance.now();
let sent = 0;
let received = 0;
const sender = (async () => {
  while (sent < pairs) {
    while (sent - received >= window) await new Promise((resolve) => setImmediate(resolve));
    await dealer.send([header, type, body]);
    sent++;
  }
})();
for await (const _ of dealer) {
  if (++received === pairs) break;
}
await sender;
const ms = performance.now() - started;
process.stdout.write(`${JSON.stringify({ pairs, ms, perSecond: (pairs / ms) * 1000 })}\n`);
dealer.close();
router.close();
await echo.catch(() => {});
process.exit(0);
