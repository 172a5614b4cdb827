#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles what testclient runs once it is not answering --help or
 * --version alone (packages/client/dist/cli-run.js: yargs, the option table, main() and
 * everything main() imports, the other packages and the pure-JS dependencies) into one CommonJS
 * file beside it, cli-run.bundle.cjs, then runs it once to save V8's code cache for it
 * (warm-code-cache.mjs). Node 20 resolves, reads and links each of some eighty ES modules on its
 * own, which made `testclient --local` start ~30 ms later than it does from one file, and it has
 * no code cache for modules; a CommonJS file can be compiled through vm.Script with one. cli.cts
 * falls back to the compiled modules while the bundle is missing or older than the last compile.
 *
 * Not bundled: zeromq (a native addon, loaded from its package when the first socket is made)
 * and execa (large, and only for --executor execa).
 */
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { RUN_BUNDLE } from '../packages/client/dist/run-bundle.cjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * yargs from its CommonJS build, as cli-kit's require() gets it: an `import` would take its ES
 * build, whose --help breaks words in the middle. It reads its translations from
 * `__dirname/../locales`: its own directory, found when the bundle runs, stands for the bundle's.
 */
const yargsCommonJs = {
  name: 'yargs-commonjs',
  setup(builder) {
    const require = createRequire(`${root}/packages/protocol/`);
    builder.onResolve({ filter: /^yargs(\/helpers)?$/ }, (args) => ({ path: require.resolve(args.path) }));
    builder.onLoad({ filter: /[\\/]yargs[\\/]build[\\/]index\.cjs$/ }, (args) => {
      const ownDir = 'var __dirname = (() => { try { return require("node:path").join(require("node:path").dirname(require.resolve("yargs")), "build"); } catch { return "/nonexistent"; } })(); // without it, English';
      return { contents: `${ownDir}\n${readFileSync(args.path, 'utf8')}`, loader: 'js' };
    });
  },
};

// The bundle of the ES run path that this one replaced.
rmSync(`${root}/packages/client/dist/cli-main.bundle.js`, { force: true });
rmSync(`${root}/packages/client/dist/cli-main.bundle.js.map`, { force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['packages/client/dist/cli-run.js'],
  outfile: RUN_BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['zeromq', 'execa'],
  // import() becomes require(), which loads ES modules too from Node 20.19 (cli.cts checks):
  // vm.Script runs no import() without --experimental-vm-modules.
  supported: { 'dynamic-import': false },
  // A CommonJS file has no import.meta: the bundle's own URL stands for each module's. Only
  // zeromq's createRequire uses it on the run path, to find zeromq from this directory.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: 'const __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [yargsCommonJs],
  // No keepNames: its __name() call runs whenever a closure is made, ~1% of a run of tiny jobs.
  // Only error classes need their names (new.target.name), and esbuild renames a declaration
  // only when two clash; ours are unique.
  keepNames: false,
  sourcemap: true,
  logLevel: 'warning',
});
// What most runs do: --local, the fast executor, results as they come, a command that fails
// (so the run exits 1). The cache only saves time: without one testclient compiles the bundle
// as usual, so a failure here is a warning, not a failed build. Not under the builder's
// NODE_OPTIONS: V8 takes a cache only under the flags it was made with.
const warm = spawnSync(process.execPath, [`${root}/scripts/warm-code-cache.mjs`, RUN_BUNDLE, '--local', '2'], {
  input: 'true\necho warm\nfalse\n',
  encoding: 'utf8',
  timeout: 60_000,
  env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TESTCLIENT_') && name !== 'NODE_OPTIONS')),
});
if (warm.status !== 1 || !existsSync(`${RUN_BUNDLE}.cache`)) {
  rmSync(`${RUN_BUNDLE}.cache`, { force: true });
  const why = warm.error?.message ?? `status ${warm.status ?? warm.signal}`;
  process.stderr.write(`bundle.mjs: warning: no code cache for ${RUN_BUNDLE} (the run that makes it failed: ${why}); testclient starts ~20 ms slower\n${warm.stderr}`);
}
