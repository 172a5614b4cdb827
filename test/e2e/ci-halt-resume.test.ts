import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileLines, lines, ndjson, printedOrder, tempDir } from '../helpers/ci.js';
import { runClient, spawnBin, startBroker, startWorker } from '../helpers/processes.js';

describe('--fail-fast', () => {
  it('cancels the running commands and skips the rest at the first failure', async () => {
    const dir = tempDir();
    const log = join(dir, 'started');
    const broker = await startBroker();
    await startWorker(broker.workers, ['--concurrency', '1']);
    const slow = [1, 2, 3, 4].map((n) => `echo slow-${n} >> ${log}; sleep 300`);
    const run = await runClient(['--broker', broker.clients, '--fail-fast'], lines(['exit 1', ...slow]));

    expect(run.code, run.proc.describe()).toBe(1);
    expect(printedOrder(run.stdout)).toEqual([['FAIL!', 'exit 1']]);
    expect(run.stdout).toContain('Halted: stopped after 1 failure (--fail-fast); 4 commands cancelled or not started\n');
    expect(run.stdout).toContain('no result hash (the run was halted)');
    // The one slot may have taken the next command before the goodbye arrived, but no more.
    expect(fileLines(log).length).toBeLessThanOrEqual(1);
    // Its `sleep 300` was cancelled: the slot is free for the next client right away.
    const next = await runClient(['--broker', broker.clients], 'echo next\n');
    expect(next.code, next.proc.describe()).toBe(0);
    expect(fileLines(log).length).toBeLessThanOrEqual(1);
  });
});

describe('--max-failures N', () => {
  const commands = (dir: string) => ['exit 1', 'echo fine', 'exit 2', `echo started >> ${join(dir, 'started')}; sleep 300`, 'echo never'];

  it('goes on after fewer than N failures and stops at the Nth', async () => {
    const dir = tempDir();
    const run = await runClient(['--local', '1', '--max-failures', '2'], lines(commands(dir)));
    expect(run.code, run.proc.describe()).toBe(1);
    expect(printedOrder(run.stdout)).toEqual([
      ['FAIL!', 'exit 1'],
      ['OK!', 'echo fine'],
      ['FAIL!', 'exit 2'],
    ]);
    expect(run.stdout).toMatch(/2 of 5 commands failed:\n {2}✗ exit 1\n {2}✗ exit 2\n/);
    expect(run.stdout).toContain('Halted: stopped after 2 failures (--max-failures 2); 2 commands cancelled or not started\n');
    expect(run.stdout).toMatch(/^Ran 3 commands in /m);
    expect(run.stdout).not.toContain('never');
  });

  it('says so in the NDJSON summary', async () => {
    const dir = tempDir();
    const run = await runClient(['--local', '1', '--max-failures', '2', '--json'], lines(commands(dir)));
    expect(run.code, run.proc.describe()).toBe(1);
    const objects = ndjson(run.stdout);
    expect(objects.at(-1)).toMatchObject({ type: 'summary', total: 5, passed: 1, failed: 2, notRun: 2, hash: null, halted: 'stopped after 2 failures (--max-failures 2)' });
    expect(objects.filter((o) => o.type === 'skipped').map((o) => o.cmd)).toEqual(commands(dir).slice(3));
  });

  it('refuses 0 and a conflicting --fail-fast (exit 2)', async () => {
    expect((await runClient(['--local', '1', '--max-failures', '0'], 'true\n')).code).toBe(2);
    const both = await runClient(['--local', '1', '--max-failures', '3', '--fail-fast'], 'true\n');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--fail-fast means --max-failures 1');
  });
});

describe('--joblog, --resume and --resume-failed', () => {
  it('logs every finished command, then re-runs only what is new (--resume) or failed (--resume-failed)', async () => {
    const dir = tempDir();
    const joblog = join(dir, 'ci.joblog');
    const ran = join(dir, 'ran');
    const cmd = (name: string, fail = false) => `echo ${name} >> ${ran}${fail ? '; exit 1' : ''}`;
    const suite = [cmd('a'), cmd('b', true), cmd('c')];

    const first = await runClient(['--local', '2', '--joblog', joblog], lines(suite));
    expect(first.code, first.proc.describe()).toBe(1);
    const logged = fileLines(joblog);
    expect(logged[0]).toBe('Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand');
    const entries = logged.slice(1).map((line) => line.split('\t'));
    expect(entries.map((e) => [e[0], e[6], e[8]]).sort()).toEqual([
      ['1', '0', suite[0]],
      ['2', '1', suite[1]],
      ['3', '0', suite[2]],
    ]);
    for (const entry of entries) {
      expect(entry[1]).toMatch(/^local:\d+$/);
      expect(Number(entry[2])).toBeGreaterThan(1e9);
      expect(Number(entry[3])).toBeGreaterThanOrEqual(0);
    }

    const resumed = await runClient(['--local', '2', '--joblog', joblog, '--resume'], lines([...suite, cmd('d')]));
    expect(resumed.code, resumed.proc.describe()).toBe(0);
    expect(printedOrder(resumed.stdout).map(([, c]) => c)).toEqual([cmd('d')]);
    expect(resumed.stdout).toContain(`Skipped 3 commands already finished in ${joblog} (--resume)\n`);
    expect(fileLines(ran).sort()).toEqual(['a', 'b', 'c', 'd']);

    const retried = await runClient(['--local', '2', '--joblog', joblog, '--resume-failed'], lines([...suite, cmd('d')]));
    expect(retried.code, retried.proc.describe()).toBe(1);
    expect(printedOrder(retried.stdout)).toEqual([['FAIL!', suite[1]]]);
    expect(retried.stdout).toContain(`Skipped 3 commands already passed in ${joblog} (--resume-failed)\n`);
    expect(fileLines(ran).sort()).toEqual(['a', 'b', 'b', 'c', 'd']);
    expect(fileLines(joblog)).toHaveLength(1 + 3 + 1 + 1);
  });

  it('lets a run killed half-way be finished by running it again with --resume', async () => {
    const dir = tempDir();
    const joblog = join(dir, 'ci.joblog');
    const flag = join(dir, 'flag');
    const suite = ['echo quick', `[ -e ${flag} ] && echo finally || sleep 300`];
    const client = spawnBin('testclient', ['--local', '2', '--joblog', joblog], { input: lines(suite) });
    await client.waitForLine(/^OK! echo quick/m);
    client.kill('SIGINT');
    expect((await client.waitForExit()).code, client.describe()).toBe(130);
    expect(fileLines(joblog).slice(1).map((line) => line.split('\t')[8])).toEqual(['echo quick']);

    writeFileSync(flag, '');
    const resumed = await runClient(['--local', '2', '--joblog', joblog, '--resume'], lines(suite));
    expect(resumed.code, resumed.proc.describe()).toBe(0);
    expect(printedOrder(resumed.stdout).map(([, c]) => c)).toEqual([suite[1]]);
    expect(resumed.stdout).toContain('finally\n');
  });

  it('needs --joblog to resume (exit 2)', async () => {
    const run = await runClient(['--local', '1', '--resume'], 'true\n');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('give --joblog FILE');
  });
});
