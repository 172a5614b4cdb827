import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/ci.js';
import { jobDirectory } from '../../packages/worker/dist/job-dir.js';

function tree(): string {
  const base = realpathSync(tempDir('testcloud-jobdir-'));
  mkdirSync(join(base, 'pkg', 'a'), { recursive: true });
  writeFileSync(join(base, 'file'), '');
  symlinkSync(tmpdir(), join(base, 'out'));
  symlinkSync(join(base, 'pkg'), join(base, 'in'));
  return base;
}

describe("jobDirectory (a job's --cwd under the worker's --cwd)", () => {
  it("runs in the worker's directory when the job names none", () => {
    expect(jobDirectory('/srv/work', undefined)).toEqual({ dir: '/srv/work' });
    expect(jobDirectory('/srv/work', '.')).toEqual({ dir: '/srv/work' });
  });

  it('resolves a relative directory inside, even through .. or a link that stays inside', () => {
    const base = tree();
    expect(jobDirectory(base, 'pkg/a')).toEqual({ dir: join(base, 'pkg', 'a') });
    expect(jobDirectory(base, 'pkg/a/../a')).toEqual({ dir: join(base, 'pkg', 'a') });
    expect(jobDirectory(base, 'in/a')).toEqual({ dir: join(base, 'pkg', 'a') });
  });

  it('refuses absolute paths, .. that leaves, links that lead out, files and missing directories', () => {
    const base = tree();
    expect(jobDirectory(base, '/etc').error).toMatch(/is absolute/);
    expect(jobDirectory(base, '..').error).toMatch(/leads outside/);
    expect(jobDirectory(base, 'pkg/../../etc').error).toMatch(/leads outside/);
    expect(jobDirectory(base, 'out').error).toMatch(/through a symbolic link/);
    expect(jobDirectory(base, 'file').error).toMatch(/is not a directory/);
    expect(jobDirectory(base, 'nope').error).toMatch(/does not exist/);
  });
});
