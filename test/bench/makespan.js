#!/usr/bin/env node
/**
 * Makespan benchmark for `testclient --timings`: how close a skewed suite of `sleep`s comes to
 * the lower bound max(longest command, total work / slots), in plain input order and in the
 * longest-first order that --timings gives from the second run on.
 *
 *   node test/bench/makespan.js [--slots 4] [--scale 1] [--json]
 *
 * Each suite runs three times on `testclient --local SLOTS`: without --timings (input order),
 * then twice with a fresh timings file (the first run records, the second schedules). The
 * makespan of a run is read from its --joblog: last end minus first start, so client start-up
 * does not count. --scale multiplies every duration (0.5 halves the time the benchmark takes).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(args[at + 1]);
};
const SLOTS = option('slots', 4);
const SCALE = option('scale', 1);

/** A deterministic pseudo-random sequence (mulberry32), so every run benchmarks the same suite. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUITES = {
  // Many short tests, and one more long test than there are slots, listed last (as `find` might).
  'long tail last': [...Array(36).fill(0.1), ...Array(SLOTS + 1).fill(1.5)],
  // Heavy-tailed durations (a few slow integration tests among unit tests), in random order.
  'heavy tail, shuffled': (() => {
    const next = random(42);
    return Array.from({ length: 48 }, () => Math.min(0.05 * Math.exp(next() * 3.5), 2.5));
  })(),
};

function run(durations, extra, dir, label) {
  const joblog = join(dir, `${label}.joblog`);
  const input = durations.map((seconds, i) => `sleep ${(seconds * SCALE).toFixed(3)} # ${i}`).join('\n');
  const child = spawnSync(process.execPath, [join(ROOT, 'bin/testclient.js'), '--local', String(SLOTS), '--quiet', '--joblog', joblog, ...extra], {
    input,
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`testclient failed (${child.status}):\n${child.stdout}\n${child.stderr}`);
  const rows = readFileSync(joblog, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split('\t').map(Number));
  const start = Math.min(...rows.map((r) => r[2]));
  const end = Math.max(...rows.map((r) => r[2] + r[3]));
  return end - start;
}

const report = [];
for (const [name, durations] of Object.entries(SUITES)) {
  const dir = mkdtempSync(join(tmpdir(), 'testcloud-makespan-'));
  try {
    const work = durations.reduce((a, b) => a + b, 0) * SCALE;
    const bound = Math.max(Math.max(...durations) * SCALE, work / SLOTS);
    const timings = join(dir, 'timings.json');
    const plain = run(durations, [], dir, 'plain');
    run(durations, ['--timings', timings], dir, 'record');
    const lpt = run(durations, ['--timings', timings], dir, 'lpt');
    report.push({ suite: name, commands: durations.length, slots: SLOTS, work, bound, plain, lpt });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.includes('--json')) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const s = (x) => `${x.toFixed(2)} s`;
  process.stdout.write('| suite | commands | slots | total work | lower bound | input order | --timings (LPT) |\n| --- | --- | --- | --- | --- | --- | --- |\n');
  for (const r of report) {
    process.stdout.write(
      `| ${r.suite} | ${r.commands} | ${r.slots} | ${s(r.work)} | ${s(r.bound)} | ${s(r.plain)} (${(r.plain / r.bound).toFixed(2)}×) | ${s(r.lpt)} (${(r.lpt / r.bound).toFixed(2)}×) |\n`,
    );
  }
}
