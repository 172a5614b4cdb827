import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** Where the code cache of `file` is kept (written by scripts/warm-code-cache.mjs). */
export function codeCacheFile(file: string): string {
  return `${file}.cache`;
}

/**
 * Loads a CommonJS bundle as require() would, but compiled with the V8 code cache saved beside
 * it, if V8 accepts it (same V8, flags and source; otherwise it compiles as usual). Node 20 has
 * no code cache of its own for modules (module.enableCompileCache came in 22), and compiling the
 * run path is a good part of testclient's start. With `saveCache`, the cache is written at exit,
 * so that it holds every function the run compiled, not only those compiled up front.
 */
export function loadCachedBundle<T>(file: string, options: { saveCache?: boolean } = {}): T {
  const cacheFile = codeCacheFile(file);
  let cachedData: Buffer | undefined;
  if (!options.saveCache) {
    try {
      // V8 checks a cache against the source's length, not its text: one older than the file
      // may be for another build of it (the build writes the cache after the bundle).
      if (statSync(cacheFile).mtimeMs >= statSync(file).mtimeMs) cachedData = readFileSync(cacheFile);
    } catch {
      // No cache: compiled as usual.
    }
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, ...(cachedData ? { cachedData } : {}) });
  if (options.saveCache) {
    process.once('exit', () => {
      writeFileSync(`${cacheFile}.tmp`, script.createCachedData());
      renameSync(`${cacheFile}.tmp`, cacheFile);
    });
  }
  const module = { exports: {} as T };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}
