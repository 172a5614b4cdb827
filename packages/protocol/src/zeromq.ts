import { createRequire } from 'node:module';
import type * as Zmq from 'zeromq';

let loaded: typeof Zmq | undefined;

/**
 * zeromq.js, loaded the first time a socket is made. Its native addon takes ~8 ms to load, which
 * `testclient --local` (mem:// endpoints only) and `--help` never need. Through require(), since
 * importing CommonJS from an ES module first scans its source for the names it exports.
 */
export function zeromq(): typeof Zmq {
  return (loaded ??= createRequire(import.meta.url)('zeromq') as typeof Zmq);
}
