import { describe, expect, it } from 'vitest';
import { SPECS } from '../../scripts/cli-docs.mjs';
import { WITHOUT_BUNDLE, clientBundleInUse, spawnBin } from '../helpers/processes.js';

describe.each(SPECS.map((spec) => [spec.program] as const))('%s --help', (program) => {
  it('prints what yargs prints, from the text `npm run build` saved or not', async () => {
    // English either way: C is served the saved text (when the build saved it); "xx", a language
    // yargs has no words for, always goes through yargs.
    const saved = spawnBin(program, ['--help'], { env: { LC_ALL: 'C' } });
    const yargs = spawnBin(program, ['--help'], { env: { LC_ALL: 'xx' } });
    expect((await saved.waitForExit()).code, saved.describe()).toBe(0);
    expect((await yargs.waitForExit()).code, yargs.describe()).toBe(0);
    expect(saved.stdout).toContain('Options:');
    expect(saved.stdout).toBe(yargs.stdout);
    expect(saved.stderr).toBe('');
  });

  it('prints the same for -h', async () => {
    const long = spawnBin(program, ['--help']);
    const short = spawnBin(program, ['-h']);
    await Promise.all([long.waitForExit(), short.waitForExit()]);
    expect(short.stdout).toBe(long.stdout);
  });
});

describe("testclient's bundled run path (cli-run.bundle.cjs)", () => {
  it('prints --help among other options as the compiled modules do, wrapped alike and in the user’s language', async () => {
    // Else both runs below take the compiled modules (`npm run build` makes the bundle).
    expect(clientBundleInUse()).toBe(true);
    const env = { LC_ALL: 'de_DE.UTF-8' };
    const bundled = spawnBin('testclient', ['--local', '2', '--help'], { env });
    const modules = spawnBin('testclient', ['--local', '2', '--help'], { env: { ...env, ...WITHOUT_BUNDLE } });
    expect((await bundled.waitForExit()).code, bundled.describe()).toBe(0);
    expect((await modules.waitForExit()).code, modules.describe()).toBe(0);
    expect(bundled.stdout).toContain('Optionen:');
    expect(bundled.stdout).toBe(modules.stdout);
  });
});
