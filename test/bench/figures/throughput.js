/**
 * Figure 3: broker throughput. A broker and WORKERS `testworker --executor noop` processes on
 * loopback TCP; `testclient --quiet` submits JOBS commands from a file and waits for every
 * result; jobs per second from the client's wall time (start-up included). The baseline is raw
 * zeromq.js pipelined request/reply pairs per second, measured alternately in the same run.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../lib/cluster.js';
import { interleave, summarise, timeShell } from '../lib/measure.js';
import { BIN, ROOT, sq } from '../lib/paths.js';

function rawZmq(pairs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/bench/probes/raw-zmq.js'), String(pairs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text) => (out += text));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`raw-zmq probe failed (${code})`))));
  });
}

export async function throughput({ jobs, workers, slots, runs, dir, rawPairs = jobs }) {
  const input = join(dir, `throughput-${jobs}.txt`);
  writeFileSync(input, 'true\n'.repeat(jobs));
  const cluster = await startCluster({ workers, workerArgs: ['--executor', 'noop', '--concurrency', String(slots)] });
  const raw = [];
  try {
    const times = await interleave(
      {
        testcloud: () => timeShell(`${sq(process.execPath)} ${sq(BIN('testclient'))} --broker ${sq(cluster.clients)} --quiet < ${sq(input)} > /dev/null`),
        'raw zeromq.js': async () => {
          const result = await rawZmq(rawPairs);
          raw.push(result.perSecond);
          return result.ms;
        },
      },
      runs,
    );
    const perSecond = summarise(times.testcloud.runs.map((ms) => (jobs / ms) * 1000));
    // The warm-up round's raw figure is not kept: interleave() timed it but threw it away.
    return { jobs, workers, slots, perSecond, rawPerSecond: summarise(raw.slice(raw.length - runs)), times };
  } finally {
    await cluster.stop();
  }
}
