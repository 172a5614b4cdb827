/** Figure 5: submit -> result p50 of one `true` on a warm local pool (probes/latency.js). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { summarise } from '../lib/measure.js';
import { ROOT } from '../lib/paths.js';

function probe(samples) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/bench/probes/latency.js'), String(samples)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text) => (out += text));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`latency probe failed (${code})`))));
  });
}

export async function latency({ samples, runs }) {
  const results = [];
  for (let i = 0; i < runs; i++) results.push(await probe(samples));
  return {
    samples,
    p50: summarise(results.map((r) => r.p50)),
    p90: summarise(results.map((r) => r.p90)),
    spawnP50: summarise(results.map((r) => r.spawnP50)),
  };
}
