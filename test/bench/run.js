#!/usr/bin/env node
/**
 * `npm run bench`: every figure of issue 5, each the median of several runs with its spread,
 * against baselines measured in the same run, as a table on stdout and as JSON.
 *
 *   node test/bench/run.js [--smoke] [--runs N] [--only tiny,short,throughput,memory,latency,startup]
 *                          [--scaling] [--out FILE]
 *
 * --smoke   tiny sizes and one run of each figure: seconds, for CI; no target is judged.
 * --scaling adds the scaling tables of docs/benchmarks.md (1/2/4/8 noop workers; 10k/100k/1M
 *           queued jobs); slow.
 * Results go to bench-results.json (bench-results.smoke.json with --smoke) at the repository
 * root unless --out says otherwise. GNU parallel is used if installed, never installed here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { endToEnd } from './figures/end-to-end.js';
import { latency } from './figures/latency.js';
import { brokerMemory, clientMemory } from './figures/memory.js';
import { startup } from './figures/startup.js';
import { throughput } from './figures/throughput.js';
import { installed, versionOf } from './lib/measure.js';
import { ROOT } from './lib/paths.js';
import { renderTable } from './lib/table.js';

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    runs: { type: 'string' },
    only: { type: 'string' },
    scaling: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const smoke = flags.smoke;
const runs = Number(flags.runs ?? (smoke ? 1 : 5));
const only = new Set((flags.only ?? 'tiny,short,throughput,memory,latency,startup').split(','));
const size = (full, small) => (smoke ? small : full);
const out = flags.out ?? join(ROOT, smoke ? 'bench-results.smoke.json' : 'bench-results.json');
const dir = mkdtempSync(join(tmpdir(), 'testcloud-bench-'));
const log = (message) => process.stderr.write(`bench: ${message}\n`);

const rows = [];
const figures = {};
/** A measured figure: its value, the baseline it is judged against, and the target (a ratio or a bound). */
function row(figure, measured, baseline, check) {
  rows.push({ figure, measured, baseline, ...check });
}
const ms = (summary) => ({ value: summary.median, min: summary.min, max: summary.max, unit: 'ms' });

try {
  if (only.has('tiny')) {
    const count = size(2000, 50);
    log(`figure 1: ${count} × true, 2 slots`);
    const result = await endToEnd({ label: 'tiny', command: 'true', count, runs, dir, withExeca: !smoke });
    figures.tiny = result;
    const tc = result.times.testclient;
    row(`1. ${count} × true, 2 slots`, ms(tc), { name: 'xargs -P 2 sh -c', ...ms(result.times.xargs) }, { ratio: tc.median / result.times.xargs.median, target: '≤ 1.5×', met: tc.median <= 1.5 * result.times.xargs.median });
    if (result.times.parallel) {
      row('', ms(tc), { name: 'parallel -j 2', ...ms(result.times.parallel) }, { ratio: tc.median / result.times.parallel.median, target: '≤ 0.5×', met: tc.median <= 0.5 * result.times.parallel.median });
    } else {
      row('', ms(tc), { name: 'parallel -j 2: not installed, skipped' }, { target: '≤ 0.5×' });
    }
    const execa = result.times['testclient --executor execa'];
    if (execa) row('   (same, --executor execa)', ms(execa), { name: 'xargs -P 2 sh -c', ...ms(result.times.xargs) }, { ratio: execa.median / result.times.xargs.median });
  }

  if (only.has('short')) {
    const count = size(400, 20);
    log(`figure 2: ${count} × sleep 0.01, 2 slots`);
    const result = await endToEnd({ label: 'short', command: 'sleep 0.01', count, runs, dir });
    figures.short = result;
    const tc = result.times.testclient;
    row(`2. ${count} × sleep 0.01, 2 slots`, ms(tc), { name: 'xargs -P 2 sh -c', ...ms(result.times.xargs) }, { ratio: tc.median / result.times.xargs.median, target: '≤ 1.05×', met: tc.median <= 1.05 * result.times.xargs.median });
    if (result.times.parallel) row('', ms(tc), { name: 'parallel -j 2', ...ms(result.times.parallel) }, { ratio: tc.median / result.times.parallel.median });
  }

  if (only.has('throughput')) {
    const [jobs, workers, slots] = [size(100_000, 2000), size(4, 2), size(32, 8)];
    log(`figure 3: broker throughput, ${jobs} jobs, ${workers} noop workers`);
    const result = await throughput({ jobs, workers, slots, runs, dir, rawPairs: jobs });
    figures.throughput = result;
    const perSecond = { value: result.perSecond.median, min: result.perSecond.min, max: result.perSecond.max, unit: 'jobs/s' };
    const raw = { name: 'raw zeromq.js pipelined pairs', value: result.rawPerSecond.median, min: result.rawPerSecond.min, max: result.rawPerSecond.max, unit: '/s' };
    row(`3. broker, ${jobs.toLocaleString('en')} jobs, ${workers} noop workers × ${slots} slots`, perSecond, { name: 'bound', value: 20_000, unit: 'jobs/s' }, { target: '≥ 20,000/s', met: result.perSecond.median >= 20_000 });
    row('', perSecond, raw, { ratio: result.perSecond.median / result.rawPerSecond.median, target: '≥ 0.4×', met: result.perSecond.median >= 0.4 * result.rawPerSecond.median });
  }

  if (only.has('memory')) {
    const [queued, lines] = [size(1_000_000, 10_000), size(1_000_000, 5000)];
    log(`figure 4: memory, ${queued} queued jobs; client reading ${lines} lines`);
    const broker = await brokerMemory({ jobs: queued, runs });
    const client = await clientMemory({ jobs: lines, runs, dir });
    figures.memory = { broker, client };
    row(`4. broker RSS per queued job (${queued.toLocaleString('en')} queued)`, { value: broker.perJob.median, min: broker.perJob.min, max: broker.perJob.max, unit: 'B' }, { name: 'bound', value: 1024, unit: 'B' }, { target: '≤ 1 KiB', met: broker.perJob.median <= 1024 });
    row(`   client peak RSS, ${lines.toLocaleString('en')} lines of yes true`, { value: client.peakRss.median / 2 ** 20, min: client.peakRss.min / 2 ** 20, max: client.peakRss.max / 2 ** 20, unit: 'MiB' }, { name: 'bound', value: 200, unit: 'MiB' }, { target: '< 200 MiB', met: client.peakRss.median < 200 * 2 ** 20 });
  }

  if (only.has('latency')) {
    log('figure 5: latency of one true on a warm local pool');
    const result = await latency({ samples: size(200, 20), runs });
    figures.latency = result;
    row('5. one true, warm --local 2, p50', ms(result.p50), { name: 'Node spawn sh -c true, p50', ...ms(result.spawnP50) }, { ratio: result.p50.median / result.spawnP50.median, target: '≤ 3 ms', met: result.p50.median <= 3 });
  }

  if (only.has('startup')) {
    log('figure 6: start-up');
    const result = await startup({ runs: size(15, 2) });
    figures.startup = result;
    const node = { name: 'node -e 0', ...ms(result['node -e 0']) };
    for (const what of ['--help', '--version']) {
      const summary = result[`testclient ${what}`];
      row(what === '--help' ? '6. testclient --help' : '   testclient --version', ms(summary), node, { ratio: summary.median / node.value, target: '≤ 2×', met: summary.median <= 2 * node.value });
    }
  }

  if (flags.scaling) {
    log('scaling: 1, 2, 4, 8 noop workers; 10k, 100k, 1M queued jobs');
    const workers = [];
    for (const count of [1, 2, 4, 8]) {
      const result = await throughput({ jobs: size(100_000, 2000), workers: count, slots: 32, runs: Math.min(runs, 3), dir, rawPairs: size(100_000, 2000) });
      workers.push({ workers: count, perSecond: result.perSecond, rawPerSecond: result.rawPerSecond });
    }
    const queued = [];
    for (const jobs of [10_000, 100_000, 1_000_000]) queued.push(await brokerMemory({ jobs: smoke ? jobs / 100 : jobs, runs: Math.min(runs, 3) }));
    figures.scaling = { workers, queued };
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const machine = {
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model,
  node: process.version,
  bash: versionOf('bash'),
  xargs: versionOf('xargs'),
  parallel: installed('parallel') ? versionOf('parallel') : 'not installed',
};
const table = renderTable(rows, { judged: !smoke });
process.stdout.write(`${table}\n`);
if (figures.scaling) process.stdout.write(`${renderScaling(figures.scaling)}\n`);
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), mode: smoke ? 'smoke' : 'full', runs, machine, rows, figures }, null, 2)}\n`);
log(`wrote ${out}`);

function renderScaling({ workers, queued }) {
  const lines = ['| noop workers (32 slots each) | jobs/s (median, min–max) | raw zeromq.js pairs/s | share |', '| --- | --- | --- | --- |'];
  for (const w of workers) {
    lines.push(`| ${w.workers} | ${Math.round(w.perSecond.median)} (${Math.round(w.perSecond.min)}–${Math.round(w.perSecond.max)}) | ${Math.round(w.rawPerSecond.median)} | ${(w.perSecond.median / w.rawPerSecond.median).toFixed(2)} |`);
  }
  lines.push('', '| queued jobs | time to accept them all | broker RSS per job | heap per job |', '| --- | --- | --- | --- |');
  for (const q of queued) {
    lines.push(`| ${q.jobs.toLocaleString('en')} | ${Math.round(q.queueMs.median)} ms | ${Math.round(q.perJob.median)} B | ${Math.round(q.heapPerJob.median)} B |`);
  }
  return lines.join('\n');
}
