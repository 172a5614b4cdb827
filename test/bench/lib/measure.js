/**
 * Measuring helpers for the benchmark: run a shell pipeline and time it, interleave contenders
 * so that a noisy neighbour hurts them alike, and summarise runs as a median with its spread.
 */
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** Runs `script` with sh; resolves with its wall time in ms. Throws with the output if it fails. */
export function timeShell(script, { cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('sh', ['-c', script], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text) => (stderr = (stderr + text).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`benchmark command failed (${signal ?? `exit ${code}`}): ${script}\n${stderr}`));
    });
  });
}

/** The median and spread of a list of numbers. */
export function summarise(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values };
}

/**
 * Times each contender `runs` times, round-robin (A B C A B C …), after one untimed warm-up
 * round that fills the page cache. Returns { name: summary } with times in ms.
 */
export async function interleave(contenders, runs, { warmUp = true, onRun } = {}) {
  const times = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = warmUp ? -1 : 0; round < runs; round++) {
    for (const [name, run] of Object.entries(contenders)) {
      const ms = await run();
      if (round >= 0) {
        times[name].push(ms);
        onRun?.(name, ms);
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, values]) => [name, summarise(values)]));
}

/** The version line of a program, or undefined when it is not installed. */
export function versionOf(command, args = ['--version']) {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.error || result.status !== 0) return undefined;
  return (result.stdout || result.stderr).split('\n')[0].trim();
}

/** Whether `command` can be found on PATH. */
export function installed(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}
