#!/usr/bin/env node
/**
 * `node scripts/warm-code-cache.mjs BUNDLE ARGS... < COMMANDS` (bundle.mjs runs it): runs BUNDLE
 * as testclient with ARGS, then saves V8's code cache of every function that run compiled beside
 * it. A cache made straight after compiling holds only what V8 compiles up front (most functions
 * are compiled on their first call); this one spared ~11 ms more of a short run.
 */
import { rmSync } from 'node:fs';
import { codeCacheFile, loadCachedBundle } from '../packages/client/dist/cached-bundle.cjs';
import { limitHeapGrowth } from '../packages/client/dist/heap.cjs';

const [bundle] = process.argv.splice(2, 1);
rmSync(codeCacheFile(bundle), { force: true });
limitHeapGrowth(); // as cli.cts does: the cache is valid only under the same V8 flags
void loadCachedBundle(bundle, { saveCache: true }).run();
