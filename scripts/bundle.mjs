#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles what testclient runs once its options are parsed
 * (packages/client/dist/cli-main.js and everything it imports: the other packages and the
 * pure-JS dependencies) into one file beside it, cli-main.bundle.js. Node 20 resolves, reads and
 * links each of some eighty ES modules on its own, which made `testclient --local` start ~30 ms
 * later than it does from one file. cli.ts falls back to the compiled modules while the bundle is
 * missing or older than the last compile.
 *
 * Not bundled: zeromq (a native addon, loaded from its package when the first socket is made),
 * execa (large, and only for --executor execa) and protocol's errors.js (see sharedErrors).
 */
import { build } from 'esbuild';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The one module the bundle shares with cli.js, which loads it: errors.js, whose TestcloudError
 * formatError (in cli.js's cli-kit) recognizes with instanceof when main() throws.
 */
const sharedErrors = {
  name: 'shared-errors',
  setup(builder) {
    const errors = join(root, 'packages/protocol/dist/errors.js');
    builder.onResolve({ filter: /\/errors\.js$/ }, (args) =>
      resolve(args.resolveDir, args.path) === errors ? { path: '../../protocol/dist/errors.js', external: true } : undefined,
    );
  },
};

await build({
  absWorkingDir: root,
  entryPoints: ['packages/client/dist/cli-main.js'],
  outfile: 'packages/client/dist/cli-main.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['execa'],
  plugins: [sharedErrors],
  // No keepNames: its __name() call runs whenever a closure is made, ~1% of a run of tiny jobs.
  // Only error classes need their names (new.target.name), and esbuild renames a declaration
  // only when two clash; ours are unique.
  keepNames: false,
  sourcemap: true,
  logLevel: 'warning',
});
