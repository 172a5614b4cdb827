/**
 * testclient's run path as scripts/bundle.mjs bundles it: yargs, the option table and main(), in
 * one CommonJS file that cli.cts loads with a V8 code cache (cached-bundle.cts). Only the bundle
 * uses this module: yargs comes in here through its CommonJS build (bundle.mjs resolves it so),
 * whose --help wraps at word boundaries; the compiled modules load it as cli-kit does.
 */
import './early-start.js'; // first: see there
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCli } from '@testcloud/protocol/cli-kit';
import { clientCli } from './cli-options.js';
import { main } from './cli-main.js';

export function run(): Promise<void> {
  return runCli({ ...clientCli, main }, () => ({ yargs, hideBin }));
}
