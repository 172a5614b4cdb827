import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileLines, lines, printedOrder, tempDir } from '../helpers/ci.js';
import { runClient } from '../helpers/processes.js';

describe('--keep-order', () => {
  it('prints results in input order even when later commands finish first', async () => {
    const dir = tempDir();
    const joblog = join(dir, 'jobs.log');
    // Each command waits until the client has logged the result of the one after it, so the
    // results arrive last to first.
    const commands = [0, 1, 2, 3].map((n) => (n === 3 ? 'echo out-3' : `until grep -q 'echo out-${n + 1}$' ${joblog}; do sleep 0.01; done; echo out-${n}`));
    const run = await runClient(['--local', '4', '--keep-order', '--joblog', joblog], lines(commands));
    expect(run.code, run.proc.describe()).toBe(0);
    // The job log is written as results arrive: it shows that they did arrive out of order.
    expect(fileLines(joblog).slice(1).map((line) => line.split('\t')[0])).toEqual(['4', '3', '2', '1']);
    expect(printedOrder(run.stdout).map(([, cmd]) => cmd)).toEqual(commands);
    expect([...run.stdout.matchAll(/^out-(\d)$/gm)].map((m) => m[1])).toEqual(['0', '1', '2', '3']);
  });
});

describe('--tag', () => {
  it("starts each line of a command's output with the command and a tab", async () => {
    const cmd = "printf 'one\\ntwo\\n'; echo err >&2; exit 1";
    const run = await runClient(['--local', '1', '--tag'], lines([cmd, 'echo solo']));
    expect(run.code, run.proc.describe()).toBe(1);
    expect(run.stdout).toContain(`${cmd}\tone\n${cmd}\ttwo\n${cmd}\terr\n`);
    expect(run.stdout).toContain('echo solo\tsolo\n');
    expect(run.stdout).not.toMatch(/^(one|two|err|solo)$/m);
  });
});

describe('--quiet', () => {
  it('prints only the failed commands and the summary', async () => {
    const run = await runClient(['--local', '2', '--quiet'], lines(['echo fine-1', 'echo broken; exit 4', 'echo fine-2']));
    expect(run.code, run.proc.describe()).toBe(1);
    expect(printedOrder(run.stdout)).toEqual([['FAIL!', 'echo broken; exit 4']]);
    expect(run.stdout).toContain('broken\n');
    expect(run.stdout).not.toMatch(/fine|Connecting|Releasing/);
    expect(run.stdout).toMatch(/1 of 3 commands failed:\n {2}✗ echo broken; exit 4\n/);
    expect(run.stdout).toMatch(/^Ran 3 commands in .*, result hash is [0-9a-f]{40}$/m);
  });
});

describe('--stderr', () => {
  const commands = ['echo ok-out; echo ok-err >&2', 'echo bad-out; echo bad-err >&2; exit 1'];

  it.each([
    ['on-failure', ['bad-err']],
    ['always', ['ok-err', 'bad-err']],
    ['never', []],
  ])('%s shows the stderr of %j', async (mode, shown) => {
    const run = await runClient(['--local', '1', '--stderr', mode as string], lines(commands));
    expect(run.code, run.proc.describe()).toBe(1);
    expect([...run.stdout.matchAll(/^(ok|bad)-err$/gm)].map((m) => m[0])).toEqual(shown);
    expect(run.stdout).toContain('ok-out\n');
    expect(run.stdout).toContain('bad-out\n');
  });

  it('rejects a mode it does not know (exit 2)', async () => {
    const run = await runClient(['--local', '1', '--stderr', 'sometimes'], 'true\n');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/Invalid values:[\s\S]*stderr/);
  });
});
