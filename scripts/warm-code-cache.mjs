#!/usr/bin/env node
/**
 * `node scripts/warm-code-cache.mjs BUNDLE ARGS... < COMMANDS` (bundle.mjs runs it): runs BUNDLE
 * as testclient with ARGS, then saves V8's code cache of every function that run compiled beside
 * it. A cache made straight after compiling holds only what V8 compiles up front (most functions
 * are compiled on their first call); this one spared ~11 ms more of a short run.
 */
import { rmSync } from 'node:fs';
import { codeCacheFile, loadCachedBundle } from '../packages/client/dist/cached-bundle.cjs';
import { defaultHeapGrowth } from '../packages/client/dist/heap.js';

const [bundle] = process.argv.splice(2, 1);
rmSync(codeCacheFile(bundle), { force: true });
// The run sets a V8 flag (heap.ts), and V8 takes a cache only under the flags it was made with:
// put it back before the cache is made (this listener runs before loadCachedBundle's).
process.once('exit', defaultHeapGrowth);
void loadCachedBundle(bundle, { saveCache: true }).run();
