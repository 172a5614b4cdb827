#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles what testclient runs once its options are parsed
 * (packages/client/dist/cli-main.js and everything it imports: the other packages and the
 * pure-JS dependencies) into one file beside it, cli-main.bundle.js. Node 20 resolves, reads and
 * links each of some eighty ES modules on its own, which made `testclient --local` start ~30 ms
 * later than it does from one file. cli.ts falls back to the compiled modules while the bundle is
 * missing or older than the last compile.
 *
 * Not bundled: zeromq (a native addon, loaded from its package), execa (large, and only for
 * --executor execa) and protocol's errors.js (see sharedErrors).
 */
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * zeromq through require(): imported from an ES module, Node would first scan its CommonJS source
 * for the names it exports (~2 ms). The names are zeromq's own, read here.
 */
const zeromqNames = Object.keys(createRequire(import.meta.url)('zeromq')).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name));
const zeromqByRequire = {
  name: 'zeromq-by-require',
  setup(builder) {
    builder.onResolve({ filter: /^zeromq$/ }, () => ({ path: 'zeromq', namespace: 'zeromq-by-require' }));
    builder.onLoad({ filter: /.*/, namespace: 'zeromq-by-require' }, () => ({
      contents: [
        "import { createRequire } from 'node:module';",
        "const zeromq = createRequire(import.meta.url)('zeromq');",
        `export const { ${zeromqNames.join(', ')} } = zeromq;`,
      ].join('\n'),
      loader: 'js',
    }));
  },
};

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
  plugins: [zeromqByRequire, sharedErrors],
  // Error classes take their name from the class (new.target.name): no renaming.
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning',
});
