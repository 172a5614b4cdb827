import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import type { JobResult } from '@testcloud/protocol';
import { jobResult } from '../helpers/job-result.js';
import { renderJUnit } from '../../packages/client/dist/junit-report.js';

function result(id: number, cmd: string, extra: Partial<JobResult> = {}): JobResult {
  return jobResult({ id, cmd, duration: 1500, ...extra });
}

const summary = {
  total: 5,
  failed: 3,
  failedCommands: [],
  hash: null,
  elapsed: 4200,
  halted: 'stopped after 3 failures (--max-failures 3)',
  notRun: ['sleep 9'],
  skipped: ['echo done-before'],
  skipReason: 'already finished in ci.joblog (--resume)',
};

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' });

describe('renderJUnit', () => {
  const xml = renderJUnit(
    [
      result(1, 'exit 3 && <x> & "q"', { exitcode: 3, stderr: `${Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n')}\n` }),
      result(0, 'echo ok', { stdout: '\u001b[32mgreen\u001b[39m bell\u0007 nul\u0000 ]]> done\n' }),
      result(2, 'no-such-command', { exitcode: null, error: 'spawn sh ENOENT' }),
      result(3, 'sleep 60', { exitcode: null, signal: 'SIGTERM', stopped: 'timeout' }),
      result(4, 'binary', { stdout: Buffer.from([0xff, 0x41]).toString('base64'), stdoutEncoding: 'base64' }),
    ],
    summary,
    { startedAt: new Date('2025-01-02T03:04:05.678Z') },
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
