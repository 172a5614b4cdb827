import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { codeCacheFile, loadCachedBundle } from '../../packages/client/dist/cached-bundle.cjs';
import { RUN_BUNDLE } from '../../packages/client/dist/run-bundle.cjs';
import { ROOT } from '../helpers/processes.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A CommonJS bundle in a directory of its own, with a function that is compiled only when called. */
function bundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tc-bundle-'));
  dirs.push(dir);
  const file = join(dir, 'bundle.cjs');
  writeFileSync(file, 'const { basename } = require("node:path");\nexports.name = () => basename(__filename) + " " + typeof module.exports.name;\n');
  return file;
}

/** Whether V8 takes `cache` as the code cache of `file`, as loadCachedBundle compiles it. */
function accepted(file: string, cache: Buffer): boolean {
  return !new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cache }).cachedDataRejected;
}

describe('loadCachedBundle', () => {
  it('loads a CommonJS file as require() would, with require, module and __filename of its own', () => {
    const file = bundle();
    expect(loadCachedBundle<{ name(): string }>(file).name()).toBe('bundle.cjs function');
  });

  it('saves at exit a code cache that V8 accepts for the same file, and loads with it', () => {
    const file = bundle();
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', `import { loadCachedBundle } from ${JSON.stringify(`${ROOT}/packages/client/dist/cached-bundle.cjs`)}; console.log(loadCachedBundle(${JSON.stringify(file)}, { saveCache: true }).name());`], { encoding: 'utf8' });
    expect(run.stdout, run.stderr).toBe('bundle.cjs function\n');
    const cache = readFileSync(codeCacheFile(file));
    expect(accepted(file, cache)).toBe(true);
    expect(loadCachedBundle<{ name(): string }>(file).name()).toBe('bundle.cjs function');
  });

  it('ignores a cache older than the file: V8 checks only the length of the source', () => {
    const file = bundle();
    writeFileSync(file, 'exports.word = () => "alpha";\n');
    const save = `import { loadCachedBundle } from ${JSON.stringify(`${ROOT}/packages/client/dist/cached-bundle.cjs`)}; console.log(loadCachedBundle(${JSON.stringify(file)}, { saveCache: true }).word());`;
    expect(spawnSync(process.execPath, ['--input-type=module', '-e', save], { encoding: 'utf8' }).stdout).toBe('alpha\n');
    // Another build of the same length, written after the cache.
    writeFileSync(file, 'exports.word = () => "omega";\n');
    const later = new Date(Date.now() + 10_000);
    utimesSync(file, later, later);
    expect(loadCachedBundle<{ word(): string }>(file).word()).toBe('omega');
  });

  it('compiles as usual when the cache is not for this file', () => {
    const file = bundle();
    writeFileSync(codeCacheFile(file), 'not a code cache');
    expect(accepted(file, readFileSync(codeCacheFile(file)))).toBe(false);
    expect(loadCachedBundle<{ name(): string }>(file).name()).toBe('bundle.cjs function');
  });
});

describe("testclient's bundle", () => {
  it('was built with a code cache that V8 accepts in a plain node, as testclient loads it', () => {
    const file = RUN_BUNDLE;
    const check = `
      const { readFileSync } = require('node:fs');
      const { Script } = require('node:vm');
      const source = require('node:module').wrap(readFileSync(${JSON.stringify(file)}, 'utf8'));
      const script = new Script(source, { filename: ${JSON.stringify(file)}, cachedData: readFileSync(${JSON.stringify(codeCacheFile(file))}) });
      console.log(script.cachedDataRejected ? 'rejected' : 'accepted');
    `;
    const run = spawnSync(process.execPath, ['-e', check], { encoding: 'utf8' });
    expect(run.stdout, run.stderr).toBe('accepted\n');
  });
});
