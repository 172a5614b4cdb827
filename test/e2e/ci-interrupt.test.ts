import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fileLines, lines, tempDir } from '../helpers/ci.js';
import { processesWith, waitForNoProcessWith } from '../helpers/process-table.js';
import { ROOT, spawnBin, spawnProcess, startBroker, startWorker, type Proc } from '../helpers/processes.js';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' || name === 'testsuite' });

type TestCase = Record<string, any>;

/** The testcases of a JUnit file, after checking that a real XML reader accepts it. */
function junitCases(file: string): { suite: TestCase; cases: TestCase[] } {
  const xml = readFileSync(file, 'utf8');
  expect(XMLValidator.validate(xml)).toBe(true);
  const suite = parser.parse(xml).testsuites.testsuite[0];
  return { suite, cases: suite.testcase };
}

/** The job log's entries as [Seq, Exitval, Command], by Seq (they are logged as they finish). */
function joblogEntries(file: string): string[][] {
  const [header, ...entries] = fileLines(file);
  expect(header).toBe('Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand');
  return entries.map((line) => line.split('\t')).map((e) => [e[0]!, e[6]!, e[8]!]).sort(([a], [b]) => Number(a) - Number(b));
}

/**
 * testclient on a pseudo-terminal (`script`), reading `commandsFile`, so that it draws its
 * progress line: the line's "N running" is the one outside sign that the client knows which
 * commands a worker has taken. The shell around it prints its exit status.
 */
function clientOnTerminal(args: string[], commandsFile: string): { proc: Proc; pid: () => number } {
  const marker = `tc-client-${randomBytes(4).toString('hex')}`;
  const client = `${process.execPath} bin/testclient.js ${args.join(' ')} < ${commandsFile}`;
  const proc = spawnProcess('script', 'script', ['-q', '-e', '-c', `${client}; echo "testclient exited with $?"`, '/dev/null'], {
    cwd: ROOT,
    env: { TC_MARK: marker },
  });
  const pid = () => {
    const found = processesWith(marker).filter((p) => p.cmdline.startsWith(`${process.execPath} bin/testclient.js`));
    if (found.length !== 1) throw new Error(`expected one testclient process, found ${JSON.stringify(found)}\n${proc.describe()}`);
    return found[0]!.pid;
  };
  onTestFinished(() => {
    for (const { pid: left } of processesWith(marker)) process.kill(left, 'SIGKILL');
  });
  return { proc, pid };
}

describe('an interrupted run', () => {
  it('on Ctrl-C writes the JUnit report, job log and timings of every result so far, marks the unfinished commands and exits 130', async () => {
    const dir = tempDir();
    const junit = join(dir, 'reports', 'junit.xml');
    const joblog = join(dir, 'ci.joblog');
    const timings = join(dir, 'timings.json');
    const blocked = `tc-blocked-${randomBytes(4).toString('hex')}`;
    const quick = ['echo pass-1', 'echo "assertion failed: 1 != 2" >&2; exit 3', 'echo pass-2'];
    const blockers = [`TC_MARK=${blocked} sleep 301`, `TC_MARK=${blocked} sleep 302`];
    const never = 'echo never-started';
    const commands = join(dir, 'commands.txt');
    writeFileSync(commands, lines([...quick, ...blockers, never]));

    const broker = await startBroker();
    // Two slots and no prefetch: the quick commands run first (in input order), then the two
    // blockers hold both slots, and the last command waits at the broker.
    await startWorker(broker.workers, ['--concurrency', '2', '--prefetch', '0', '--name', 'w1']);
    const client = clientOnTerminal(['--broker', broker.clients, '--junit', junit, '--joblog', joblog, '--timings', timings], commands);
    // Three results in, and both blockers confirmed by the worker.
    await client.proc.waitForLine(/\[3\/6\] 2 running/);
    for (const cmd of quick) expect(client.proc.stdout).toContain(`${cmd} ⌚`);
    process.kill(client.pid(), 'SIGINT');

    await client.proc.waitForLine(/testclient exited with \d+/);
    expect(client.proc.stdout, client.proc.describe()).toContain('testclient exited with 130');
    expect(client.proc.stdout).toContain('testclient: interrupted; the broker cancels the commands still running');
    // The goodbye made the broker drop the waiting command and cancel both blockers on the worker.
    await broker.proc.waitForLine(/said goodbye: client interrupted: dropped 1 queued job, cancelled 2 running jobs/);
    await waitForNoProcessWith(blocked);

    const { suite, cases } = junitCases(junit);
    expect(suite).toMatchObject({ tests: '6', failures: '1', errors: '2', skipped: '1' });
    expect(cases.map((c) => c.name)).toEqual([...quick, ...blockers, never]);
    expect(cases[0]!['system-out']).toBe('pass-1');
    expect(cases[0]!.failure).toBeUndefined();
    expect(cases[1]!.failure).toMatchObject({ message: 'exit 3', type: 'exit', '#text': 'assertion failed: 1 != 2' });
    expect(cases[2]!['system-out']).toBe('pass-2');
    for (const blocker of cases.slice(3, 5)) {
      expect(blocker.error).toMatchObject({ message: 'interrupted before it finished', type: 'interrupted' });
      expect(blocker.error['#text']).toMatch(/^interrupted before it finished: testclient received SIGINT when the command had been on worker w1 for \d+\.\d s; it was cancelled there/);
      expect(Number(blocker.time)).toBeGreaterThan(0);
    }
    expect(cases[5]!.skipped.message).toBe('not run: interrupted by SIGINT before a worker took it');

    // Only finished commands are in the job log (so --resume runs the others again) and in the timings.
    expect(joblogEntries(joblog)).toEqual([
      ['1', '0', quick[0]],
      ['2', '3', quick[1]],
      ['3', '0', quick[2]],
    ]);
    const saved = JSON.parse(readFileSync(timings, 'utf8'));
    expect(saved.run).toBe(1);
    expect(Object.keys(saved.commands).sort()).toEqual([...quick].sort());
  });

  it('on SIGTERM (a cancelled CI job) does the same and exits 130 by itself', async () => {
    const dir = tempDir();
    const junit = join(dir, 'junit.xml');
    const joblog = join(dir, 'ci.joblog');
    const blocked = `tc-blocked-${randomBytes(4).toString('hex')}`;
    const quick = ['echo quick', 'exit 2'];
    const blocker = `TC_MARK=${blocked} sleep 303`;
    const never = 'echo never-started';

    const broker = await startBroker();
    await startWorker(broker.workers, ['--concurrency', '1', '--prefetch', '0']);
    const client = spawnBin('testclient', ['--broker', broker.clients, '--junit', junit, '--joblog', joblog], { input: lines([...quick, blocker, never]) });
    await client.waitForLine(/^OK! echo quick ⌚/m);
    await client.waitForLine(/^FAIL! exit 2 ⌚/m);
    client.kill('SIGTERM');
    expect(await client.waitForExit(), client.describe()).toEqual({ code: 130, signal: null });
    await waitForNoProcessWith(blocked);

    const { suite, cases } = junitCases(junit);
    expect(suite).toMatchObject({ tests: '4', failures: '1' });
    expect(cases.map((c) => c.name)).toEqual([...quick, blocker, never]);
    expect(cases[0]!['system-out']).toBe('quick');
    expect(cases[1]!.failure).toMatchObject({ message: 'exit 2', type: 'exit' });
    // The blocker is an <error> once the client knows the worker took it (its QUEUED comes 10 ms
    // after the start), else <skipped>; the test above pins that down. Either way it says why.
    expect(cases[2]!.error?.message ?? cases[2]!.skipped?.message).toMatch(/interrupted/);
    expect(cases[3]!.skipped.message).toBe('not run: interrupted by SIGTERM before a worker took it');
    expect(joblogEntries(joblog)).toEqual([
      ['1', '0', quick[0]],
      ['2', '2', quick[1]],
    ]);
  });
});
