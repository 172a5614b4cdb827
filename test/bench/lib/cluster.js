/**
 * A broker and some workers started as real processes on loopback, for the throughput and
 * memory figures; everything started is stopped (SIGTERM, then SIGKILL) and awaited.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { BIN } from './paths.js';

function start(name, args, ready) {
  const child = spawn(process.execPath, [BIN(name), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const found = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s:\n${log}`)), 20_000);
    child.stderr.setEncoding('utf8').on('data', (text) => {
      log = (log + text).slice(-8000);
      const match = ready.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready:\n${log}`));
    });
  });
  return { child, found, log: () => log };
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts a broker and `workers` worker processes (each with `workerArgs`); resolves once all joined. */
export async function startCluster({ workers, workerArgs = [], brokerArgs = [] }) {
  const broker = start('testbroker', ['--clients', 'tcp://127.0.0.1:*', '--workers', 'tcp://127.0.0.1:*', ...brokerArgs], /listening for clients on (\S+) and for workers on (\S+)/);
  const [, clients, workerEndpoint] = await broker.found;
  const started = Array.from({ length: workers }, () => start('testworker', ['--broker', workerEndpoint, ...workerArgs], /connected to broker/));
  try {
    await Promise.all(started.map((worker) => worker.found));
  } catch (error) {
    await Promise.all([...started.map((worker) => stop(worker.child)), stop(broker.child)]);
    throw error;
  }
  return {
    clients,
    brokerPid: broker.child.pid,
    async stop() {
      await Promise.all(started.map((worker) => stop(worker.child)));
      await stop(broker.child);
    },
  };
}
