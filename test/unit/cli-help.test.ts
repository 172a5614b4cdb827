import { describe, expect, it } from 'vitest';
import { SPECS } from '../../scripts/cli-docs.mjs';
import { spawnBin } from '../helpers/processes.js';

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
