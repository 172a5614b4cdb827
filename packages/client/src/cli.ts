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

/**
 * Whether these arguments will run `--local` with the fast executor: a guess from the raw
 * arguments, before yargs, so it must be harmless when wrong (an unused Python exits with us).
 */
function runsLocalPython(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (args.some((arg) => arg === '--help' || arg === '-h' || arg === '--version')) return false;
  if (env.TESTCLIENT_LOCAL === undefined && !args.some((arg) => arg === '--local' || arg.startsWith('--local='))) return false;
  // The last one, as yargs takes the last of a repeated flag.
  let executor = -1;
  args.forEach((arg, at) => {
    if (arg === '--executor' || arg.startsWith('--executor=')) executor = at;
  });
  if (executor === -1) return (env.TESTCLIENT_EXECUTOR ?? 'fast') === 'fast';
  return args[executor] === '--executor=fast' || args[executor + 1] === 'fast';
}

// The run path, loaded first, starts --local's Python before yargs takes its ~20 ms.
if (runsLocalPython(process.argv.slice(2), process.env)) {
  try {
    ((await import(mainModule())) as typeof import('./cli-main.js')).prestart();
  } catch {
    // Only a head start: main() loads it again and reports what is wrong in one line.
  }
}
void runCli<ClientArgs>({ ...clientCli, main });
