/**
 * Figure 4: memory. (a) What a queued job costs the broker (probes/broker-memory.js, in a
 * process of its own with --expose-gc). (b) The peak RSS of `testclient` reading JOBS lines of
 * `yes true` through a broker with noop workers (probes/peak-rss.mjs records it at exit).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../lib/cluster.js';
import { summarise, timeShell } from '../lib/measure.js';
import { BIN, ROOT, sq } from '../lib/paths.js';

export function brokerMemoryOnce(jobs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', join(ROOT, 'test/bench/probes/broker-memory.js'), String(jobs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text) => (out += text));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`broker-memory probe failed (${code})`))));
  });
}

export async function brokerMemory({ jobs, runs }) {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await brokerMemoryOnce(jobs));
  return {
    jobs,
    perJob: summarise(results.map((r) => r.perJob)),
    heapPerJob: summarise(results.map((r) => r.heapPerJob)),
    idleRss: summarise(results.map((r) => r.idleRss)),
    queueMs: summarise(results.map((r) => r.queueMs)),
  };
}

export async function clientMemory({ jobs, runs, dir }) {
  const cluster = await startCluster({ workers: 4, workerArgs: ['--executor', 'noop', '--concurrency', '32'] });
  const peaks = [];
  const times = [];
  try {
    for (let i = 0; i < runs; i++) {
      const file = join(mkdtempSync(join(dir, 'peak-')), 'rss');
      const client = `${sq(process.execPath)} --import ${sq(join(ROOT, 'test/bench/probes/peak-rss.mjs'))} ${sq(BIN('testclient'))}`;
      times.push(await timeShell(`yes true | head -n ${jobs} | ${client} --broker ${sq(cluster.clients)} --quiet > /dev/null`, { env: { TC_BENCH_PEAK_FILE: file } }));
      peaks.push(Number(readFileSync(file, 'utf8')));
      rmSync(file, { force: true });
    }
  } finally {
    await cluster.stop();
  }
  return { jobs, peakRss: summarise(peaks), times: summarise(times) };
}
