/**
 * testclient's first module, and CommonJS: Node 20 starts an ES module entry point ~4 ms later
 * (it sets up its ES module loader first), and each ES module costs it a millisecond or two
 * more. bin/testclient.js requires it.
 */
import { loadCachedBundle } from './cached-bundle.cjs';
import type { ClientArgs } from './cli-options.js';
import { RUN_BUNDLE, runBundleIsCurrent } from './run-bundle.cjs';

interface RunPath {
  run(): Promise<void>;
}

/**
 * The run path bundled by `npm run build` (scripts/bundle.mjs): yargs and everything main()
 * imports in one CommonJS file, compiled from the V8 code cache saved beside it. Some eighty ES
 * modules took Node 20 ~30 ms longer to resolve and load, and compiling them ~20 ms more. Used
 * where it is current (run-bundle.cts). Evaluating it starts --local's Python (early-start.ts).
 */
function bundledRunPath(): RunPath | undefined {
  if (!runBundleIsCurrent()) return undefined;
  try {
    return loadCachedBundle<RunPath>(RUN_BUNDLE);
  } catch {
    return undefined; // the compiled modules below say what is wrong, if anything is
  }
}

/**
 * The same from the compiled ES modules, each loaded when needed, so that --help and --version
 * load neither yargs nor the rest.
 */
async function runModules(answeredAlone: boolean): Promise<void> {
  if (!answeredAlone) {
    try {
      (await import('./local-python.js')).prestartLocalPython();
    } catch {
      // Only a head start: main() loads the same modules and reports what is wrong in one line.
    }
  }
  const [{ runCli }, { clientCli }] = await Promise.all([import('@testcloud/protocol/cli-kit'), import('./cli-options.js')]);
  await runCli<ClientArgs>({ ...clientCli, main: async (args) => (await import('./cli-main.js')).main(args) });
}

const args = process.argv.slice(2);
// runCli answers these alone without a parser: nothing more to load.
const answeredAlone = args.length === 1 && ['--help', '-h', '--version'].includes(args[0]!);
const bundled = answeredAlone ? undefined : bundledRunPath();
void (bundled ? bundled.run() : runModules(answeredAlone));
