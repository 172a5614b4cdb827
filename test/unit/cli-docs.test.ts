import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI_DOC, SPECS, renderCliDocs } from '../../scripts/cli-docs.mjs';
import { spawnBin } from '../helpers/processes.js';

describe('docs/cli.md', () => {
  it('is exactly what scripts/cli-docs.mjs generates from the option tables (else run `npm run docs:cli`)', () => {
    expect(readFileSync(CLI_DOC, 'utf8')).toBe(renderCliDocs());
  });

  it('documents all three binaries', () => {
    expect(SPECS.map((spec) => spec.program)).toEqual(['testbroker', 'testworker', 'testclient']);
  });
});

describe.each(SPECS.map((spec) => [spec.program, spec] as const))('%s --help', (program, spec) => {
  it('lists every option of the table, with its alias', async () => {
    const proc = spawnBin(program, ['--help']);
    const exit = await proc.waitForExit();
    expect(exit.code, proc.describe()).toBe(0);
    for (const [name, option] of Object.entries(spec.options)) {
      const flag = option.alias === undefined ? `--${name}` : `-${option.alias}, --${name}`;
      expect(proc.stdout, `${program} --help should list ${flag}`).toContain(flag);
    }
  });
});
