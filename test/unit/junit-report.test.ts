import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { JobResult } from '@testcloud/protocol';
import { tempDir } from '../helpers/ci.js';
import { jobResult } from '../helpers/job-result.js';
import { JUnitReport, type UnfinishedCase } from '../../packages/client/dist/junit-report.js';

function result(id: number, cmd: string, extra: Partial<JobResult> = {}): JobResult {
  return jobResult({ id, cmd, duration: 1500, ...extra });
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' });

/** Writes a report of `results` (added in the order given) and `unfinished`, and returns the file's text. */
function report(results: JobResult[], unfinished: UnfinishedCase[], elapsed = 4200): string {
  const dir = mkdtempSync(join(tmpdir(), 'testcloud-junit-'));
  try {
    const file = join(dir, 'reports', 'junit.xml');
    const junit = new JUnitReport(file, { startedAt: new Date('2025-01-02T03:04:05.678Z') });
    for (const r of results) junit.add(r);
    junit.write(elapsed, unfinished);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('JUnitReport', () => {
  const xml = report(
    [
      result(1, 'exit 3 && <x> & "q"', { exitcode: 3, stderr: `${Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n')}\n` }),
      result(0, 'echo ok', { stdout: '\u001b[32mgreen\u001b[39m bell\u0007 nul\u0000 ]]> done\n' }),
      result(2, 'no-such-command', { exitcode: null, error: 'spawn sh ENOENT' }),
      result(4, 'binary', { stdout: Buffer.from([0xff, 0x41]).toString('base64'), stdoutEncoding: 'base64' }),
      result(3, 'sleep 60', { exitcode: null, signal: 'SIGTERM', stopped: 'timeout' }),
    ],
    [
      { cmd: 'sleep 9', kind: 'skipped', message: 'not run: stopped after 3 failures (--max-failures 3)' },
      { cmd: 'echo done-before', kind: 'skipped', message: 'not run: already finished in ci.joblog (--resume)' },
    ],
  );

  it('is well-formed XML whatever the commands printed', () => {
    expect(XMLValidator.validate(xml)).toBe(true);
  });

  it('has one testcase per command in input order, then the skipped ones, with counts that add up', () => {
    const suite = parser.parse(xml).testsuites.testsuite;
    expect(suite).toMatchObject({ name: 'testclient', tests: '7', failures: '2', errors: '1', skipped: '2', time: '4.200', timestamp: '2025-01-02T03:04:05' });
    expect(suite.testcase.map((c: { name: string }) => c.name)).toEqual(['echo ok', 'exit 3 && <x> & "q"', 'no-such-command', 'sleep 60', 'binary', 'sleep 9', 'echo done-before']);
    expect(suite.testcase[0].time).toBe('1.500');
  });

  it('says why a command failed and quotes the tail of its stderr', () => {
    const failed = parser.parse(xml).testsuites.testsuite.testcase[1];
    expect(failed.failure.message).toBe('exit 3');
    expect(failed.failure['#text']).toMatch(/^\[… 10 earlier lines in system-err\]\nline 10\n[\s\S]*line 39$/);
    expect(failed['system-err']).toContain('line 0\n');
    const timedOut = parser.parse(xml).testsuites.testsuite.testcase[3];
    expect(timedOut.failure).toMatchObject({ message: 'timed out', type: 'timeout' });
  });

  it('reports a command that could not start as an error, and skipped ones with the reason', () => {
    const cases = parser.parse(xml).testsuites.testsuite.testcase;
    expect(cases[2].error.message).toBe('could not start: spawn sh ENOENT');
    expect(cases[5].skipped.message).toBe('not run: stopped after 3 failures (--max-failures 3)');
    expect(cases[6].skipped.message).toBe('not run: already finished in ci.joblog (--resume)');
  });

  it('drops colour codes and characters XML cannot carry from the output', () => {
    const cases = parser.parse(xml).testsuites.testsuite.testcase;
    expect(cases[0]['system-out']).toBe('green bell\ufffd nul\ufffd ]]> done');
    expect(cases[4]['system-out']).toBe('\ufffdA');
  });
});

describe('JUnitReport of an interrupted run', () => {
  const xml = report(
    [result(2, 'echo late', { stdout: 'late\n' }), result(0, 'exit 1', { exitcode: 1 })],
    [
      { cmd: 'sleep 300', kind: 'interrupted', message: 'interrupted before it finished', ms: 12_345, detail: 'testclient received SIGINT when the command had been on worker w for 12.3 s' },
      { cmd: 'echo queued', kind: 'skipped', message: 'not run: interrupted by SIGINT before a worker took it' },
    ],
  );

  it('counts a command a worker had as an error and one no worker took as skipped', () => {
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = parser.parse(xml).testsuites.testsuite;
    expect(suite).toMatchObject({ tests: '4', failures: '1', errors: '1', skipped: '1' });
    expect(suite.testcase.map((c: { name: string }) => c.name)).toEqual(['exit 1', 'echo late', 'sleep 300', 'echo queued']);
    expect(suite.testcase[2]).toMatchObject({
      time: '12.345',
      error: {
        message: 'interrupted before it finished',
        type: 'interrupted',
        '#text': 'interrupted before it finished: testclient received SIGINT when the command had been on worker w for 12.3 s',
      },
    });
    // The reason is the message (Jenkins shows it) and the text (GitLab shows that).
    expect(suite.testcase[3].skipped).toEqual({ message: 'not run: interrupted by SIGINT before a worker took it', '#text': 'not run: interrupted by SIGINT before a worker took it' });
  });
});

describe('JUnitReport storage', () => {
  it('keeps the testcases in a scratch file that never shows in the directory, and leaves only the report', () => {
    const dir = tempDir();
    const file = join(dir, 'junit.xml');
    const junit = new JUnitReport(file);
    junit.add(result(0, 'echo big', { stdout: 'x'.repeat(100_000) }));
    expect(readdirSync(dir)).toEqual([]);
    junit.write(1, []);
    expect(readdirSync(dir)).toEqual(['junit.xml']);
    const cases = parser.parse(readFileSync(file, 'utf8')).testsuites.testsuite.testcase;
    expect(cases[0]['system-out']).toHaveLength(100_000);
  });

  it('puts thousands of results arriving in any order back in input order', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => (i * 7919) % 3000); // a permutation
    const xml = report(ids.map((id) => result(id, `echo ${id}`, { stdout: `${id}\n` })), []);
    const cases = parser.parse(xml).testsuites.testsuite.testcase;
    expect(cases).toHaveLength(3000);
    cases.forEach((c: { name: string; 'system-out': number }, i: number) => {
      expect(c.name).toBe(`echo ${i}`);
      expect(String(c['system-out'])).toBe(String(i));
    });
  });
});
