import { statSync } from 'node:fs';
import { runCli } from '@testcloud/protocol/cli-kit';
import { clientCli, type ClientArgs } from './cli-options.js';

async function main(args: ClientArgs): Promise<number> {
  // Imported here, not at the top: --help and --version load neither zeromq nor the rest.
  const { main: run } = (await import(mainModule())) as typeof import('./cli-main.js');
  return run(args);
}

/**
 * cli-main.js, or its bundle (one file instead of some eighty modules, which Node 20 takes ~30 ms
 * longer to resolve and load: scripts/bundle.mjs, run by `npm run build`) while the bundle is
 * newer than every package's last compile, so that `tsc -b` alone never leaves a stale bundle
 * running.
 */
function mainModule(): string {
  try {
    const bundled = statSync(new URL('./cli-main.bundle.js', import.meta.url)).mtimeMs;
    for (const name of ['protocol', 'broker', 'worker', 'client']) {
      if (statSync(new URL(`../../${name}/dist/.tsbuildinfo`, import.meta.url)).mtimeMs >= bundled) return './cli-main.js';
    }
    return './cli-main.bundle.js';
  } catch {
    return './cli-main.js';
  }
}

// The run path is needed anyway unless this is --help or --version; loaded first, it can start
// what takes a while (--local's Python) before yargs takes its ~20 ms.
const args = process.argv.slice(2);
if (args.includes('--local') || args.some((arg) => arg.startsWith('--local=')) || process.env.TESTCLIENT_LOCAL !== undefined) {
  try {
    ((await import(mainModule())) as typeof import('./cli-main.js')).prestart(args, process.env);
  } catch {
    // Only a head start: main() loads it again and reports what is wrong in one line.
  }
}
void runCli<ClientArgs>({ ...clientCli, main });
