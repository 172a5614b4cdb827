import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCachedBundle } from './cached-bundle.js';
import type { ClientArgs } from './cli-options.js';

interface RunPath {
  prestart(): void | Promise<void>;
  run(): Promise<void>;
}

/**
 * The run path bundled by `npm run build` (scripts/bundle.mjs): yargs and everything main()
 * imports in one CommonJS file, compiled from the V8 code cache saved beside it. Some eighty ES
 * modules took Node 20 ~30 ms longer to resolve and load, and compiling them ~20 ms more. Used
 * while newer than every package's last compile, so that `tsc -b` alone never leaves a stale
 * bundle running, and where require() loads ES modules (Node 20.19 and later): the bundle
 * requires execa.
 */
function bundledRunPath(): RunPath | undefined {
  if (!(process.features as { require_module?: boolean }).require_module) return undefined;
  const file = fileURLToPath(new URL('./cli-run.bundle.cjs', import.meta.url));
  try {
    const built = statSync(file).mtimeMs;
    for (const name of ['protocol', 'broker', 'worker', 'client']) {
      if (statSync(new URL(`../../${name}/dist/.tsbuildinfo`, import.meta.url)).mtimeMs >= built) return undefined;
    }
    return loadCachedBundle<RunPath>(file);
  } catch {
    return undefined; // the compiled modules below say what is wrong, if anything is
  }
}

/**
 * The same from the compiled ES modules, each loaded when needed (none before the bundle: each
 * costs Node 20 a millisecond or two), so that --help and --version load neither yargs nor the rest.
 */
const modulesRunPath: RunPath = {
  prestart: async () => {
    try {
      (await import('./cli-main.js')).prestart();
    } catch {
      // Only a head start: main() loads it again and reports what is wrong in one line.
    }
  },
  run: async () => {
    const [{ runCli }, { clientCli }] = await Promise.all([import('@testcloud/protocol/cli-kit'), import('./cli-options.js')]);
    await runCli<ClientArgs>({ ...clientCli, main: async (args) => (await import('./cli-main.js')).main(args) });
  },
};

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

const args = process.argv.slice(2);
// runCli answers these alone without a parser: nothing more to load.
const answeredAlone = args.length === 1 && ['--help', '-h', '--version'].includes(args[0]!);
const runPath = (answeredAlone ? undefined : bundledRunPath()) ?? modulesRunPath;
// --local's Python starts before yargs takes its time.
if (runsLocalPython(args, process.env)) await runPath.prestart();
void runPath.run();
