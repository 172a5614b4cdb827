#!/usr/bin/env node
/**
 * `npm run build`, after tsc: saves what `testbroker --help`, `testworker --help` and
 * `testclient --help` print (in English, 100 columns wide as in a pipe) in
 * packages/protocol/dist/help/, each headed by the key of the option table it came from. runCli
 * prints the saved text for `--help` when the key, the width and the language match (savedHelp in
 * cli-kit.ts), which spares it loading yargs; otherwise yargs prints it as before.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { helpKey } from '@testcloud/protocol/cli-kit';
import { brokerCli } from '@testcloud/broker';
import { workerCli } from '@testcloud/worker';
import { clientCli } from '@testcloud/client';

const root = new URL('..', import.meta.url);
const dir = new URL('packages/protocol/dist/help/', root);
const WIDTH = 100;

// Removed first: each binary below must print its help through yargs.
rmSync(dir, { recursive: true, force: true });
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(LC_|LANG|TEST(BROKER|WORKER|CLIENT)_)/.test(name)));
const texts = [brokerCli, workerCli, clientCli].map((spec) => {
  // stdout is a pipe here, so yargs wraps at WIDTH (see helpWidth in cli-kit.ts).
  const text = execFileSync(process.execPath, [fileURLToPath(new URL(`bin/${spec.program}.js`, root)), '--help'], { env: { ...env, LC_ALL: 'C' }, encoding: 'utf8' });
  return [spec, text];
});
mkdirSync(dir, { recursive: true });
for (const [spec, text] of texts) writeFileSync(new URL(`${spec.program}.txt`, dir), `${helpKey(spec, WIDTH)}\n${text}`);
