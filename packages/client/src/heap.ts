import { setFlagsFromString } from 'node:v8';

/**
 * Lets the client's old generation grow by half its live size between full collections, where
 * V8 lets a small heap grow up to fourfold. Results in flight outlive two scavenges, so each
 * leaves a little garbage in the old generation: a client reading a million commands (~16 MB
 * live) peaked at 160-200 MiB of RSS, and at 130-140 MiB with this, ~3 % slower. V8 reads the
 * flag each time it sets the next limit, so it works after start-up (a shebang cannot pass
 * node flags portably). Called once the run has started, not earlier: V8 accepts a code cache
 * only under the flags it was made with, and that goes for Node's own built-in modules too
 * (loaded after a flag change, they compile from source: ~12 ms more for those testclient
 * loads). warm-code-cache.mjs puts the flag back before it saves the bundle's cache.
 */
export function limitHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=50');
}

/** Undoes limitHeapGrowth (V8's default). */
export function defaultHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=0');
}
