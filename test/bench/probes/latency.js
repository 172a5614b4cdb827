#!/usr/bin/env node
/**
 * Figure 5: submit -> result latency of one `true` on a warm `--local 2` pool, in this process:
 * commands are handed to the client one at a time, each after the previous result, and timed
 * from the hand-over to the result. Also times Node spawning `sh -c true` itself, the floor of
 * any executor that starts a process per job. Prints one JSON line:
 * { samples, p50, p90, spawnP50 } (ms).
 *
 *   node test/bench/probes/latency.js [samples] [executor]
 */
import { spawn } from 'node:child_process';

const root = new URL('../../../', import.meta.url);
const { startLocalPool, runCommands } = await import(new URL('packages/client/dist/index.js', root));
const samples = Number(process.argv[2] ?? 200);
const executor = process.argv[3] ?? 'fast';
const warmUp = Math.min(20, samples);

const pool = await startLocalPool({ slots: 2, executor });
const times = [];
let handedOver = 0;
let answered;
async function* commands() {
  for (let i = 0; i < warmUp + samples; i++) {
    const result = new Promise((resolve) => (answered = resolve));
    handedOver = performance.now();
    yield ['true'];
    const at = await result;
    if (i >= warmUp) times.push(at - handedOver);
  }
}
await runCommands({
  broker: pool.endpoint,
  commands: commands(),
  observer: { result: () => answered(performance.now()) },
});
await pool.stop();

const spawnTimes = [];
for (let i = 0; i < warmUp + samples; i++) {
  const started = performance.now();
  await new Promise((resolve, reject) => spawn('sh', ['-c', 'true'], { stdio: 'ignore' }).on('exit', resolve).on('error', reject));
  if (i >= warmUp) spawnTimes.push(performance.now() - started);
}

const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
process.stdout.write(`${JSON.stringify({ samples, p50: percentile(times, 0.5), p90: percentile(times, 0.9), spawnP50: percentile(spawnTimes, 0.5) })}\n`);
process.exit(0);
