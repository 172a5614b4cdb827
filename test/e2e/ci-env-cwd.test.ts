import { mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lines, ndjson, tempDir } from '../helpers/ci.js';
import { runClient, startBroker, startWorker } from '../helpers/processes.js';

async function cluster(workerCwd: string) {
  const broker = await startBroker();
  await startWorker(broker.workers, ['--concurrency', '2', '--cwd', workerCwd]);
  return broker;
}

describe('--env and --cwd travel with each job', () => {
  it("sets the variables and runs in the directory under the worker's --cwd", async () => {
    const base = tempDir();
    mkdirSync(join(base, 'pkg', 'a'), { recursive: true });
    const broker = await cluster(base);
    const run = await runClient(
      ['--broker', broker.clients, '--json', '--env', 'CI_SECRET', '--env', 'MODE=fast lane', '--cwd', 'pkg/a'],
      lines(['pwd', 'printf "%s|%s|%s" "$CI_SECRET" "$MODE" "$HOME"']),
      { env: { CI_SECRET: 's3cr3t' } },
    );
    expect(run.code, run.proc.describe()).toBe(0);
    // Results arrive as commands finish; put them back in input order.
    const [pwd, env] = ndjson(run.stdout)
      .filter((o) => o.type === 'result')
      .sort((a, b) => (a.id as number) - (b.id as number));
    expect(pwd!.stdout).toBe(`${join(base, 'pkg', 'a')}\n`);
    // On top of the worker's own environment, not instead of it.
    expect(env!.stdout).toBe(`s3cr3t|fast lane|${process.env.HOME}`);
  });

  it("fails a job whose directory leads outside the worker's --cwd, with the reason", async () => {
    const base = tempDir();
    symlinkSync(tmpdir(), join(base, 'out'));
    const broker = await cluster(base);
    for (const [cwd, reason] of [
      ['..', /job directory "\.\." leads outside the worker's --cwd/],
      ['out', /job directory "out" leads outside the worker's --cwd .* \(through a symbolic link\)/],
      ['missing', /job directory "missing" does not exist under the worker's --cwd/],
    ] as const) {
      const run = await runClient(['--broker', broker.clients, '--json', '--cwd', cwd], 'pwd\n');
      expect(run.code, run.proc.describe()).toBe(1);
      const [result] = ndjson(run.stdout);
      expect(result).toMatchObject({ type: 'result', status: 'failed', exitcode: null, stdout: '' });
      expect(result!.error).toMatch(reason);
    }
  });

  it('refuses an absolute --cwd with a broker, and an unset --env variable (exit 2)', async () => {
    const absolute = await runClient(['--broker', 'tcp://127.0.0.1:1', '--cwd', '/etc'], 'pwd\n');
    expect(absolute.code).toBe(2);
    expect(absolute.stderr).toContain("--cwd /etc is absolute: with a broker it is relative to each worker's --cwd");
    const unset = await runClient(['--local', '1', '--env', 'TESTCLOUD_SURELY_UNSET'], 'true\n');
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('TESTCLOUD_SURELY_UNSET is not set here');
  });
});
