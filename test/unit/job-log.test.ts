import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/ci.js';
import type { JobResult } from '@testcloud/protocol';
import { jobResult } from '../helpers/job-result.js';
import { JOBLOG_HEADER, JobLog, ResumeFilter, parseJobLog, readJobLog } from '../../packages/client/dist/job-log.js';

function result(cmd: string, exitcode: number | null, extra: Partial<JobResult> = {}): JobResult {
  return jobResult({ cmd, exitcode, stdout: 'hello\n', duration: 1234.5, worker: 'host-a:17', ...extra });
}

describe('JobLog (--joblog)', () => {
  it("writes GNU parallel's columns, one line per result, and reads them back", () => {
    const file = join(tempDir('testcloud-joblog-'), 'jobs.log');
    const log = new JobLog(file, false);
    log.record(3, result('printf "a\\tb"', 0), 1_700_000_000_500);
    log.record(1, result('kill -9 $$', null, { signal: 'SIGKILL' }), 1_700_000_001_000);
    log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toBe(JOBLOG_HEADER);
    expect(lines[1]).toBe('3\thost-a:17\t1700000000.500\t1.234\t0\t6\t0\t0\tprintf "a\\tb"');
    expect(lines[2]).toBe('1\thost-a:17\t1700000001.000\t1.234\t0\t6\t-1\t9\tkill -9 $$');
    const entries = readJobLog(file);
    expect(entries.map((e) => [e.seq, e.exitval, e.signal, e.cmd])).toEqual([
      [3, 0, 0, 'printf "a\\tb"'],
      [1, -1, 9, 'kill -9 $$'],
    ]);
  });

  it('appends when resuming, without a second header, and starts afresh otherwise', () => {
    const file = join(tempDir('testcloud-joblog-'), 'jobs.log');
    new JobLog(file, false).record(1, result('a', 0), 0);
    const resumed = new JobLog(file, true);
    resumed.record(2, result('b', 0), 0);
    resumed.close();
    expect(readJobLog(file).map((e) => e.cmd)).toEqual(['a', 'b']);
    expect(readFileSync(file, 'utf8').split(JOBLOG_HEADER)).toHaveLength(2);
    new JobLog(file, false).close();
    expect(readJobLog(file)).toEqual([]);
  });

  it('skips a torn last line and reads a missing log as empty', () => {
    expect(parseJobLog(`${JOBLOG_HEADER}\n1\th\t1.0\t0.5\t0\t0\t0\t0\tdone\n2\th\t1.0`).map((e) => e.cmd)).toEqual(['done']);
    expect(readJobLog('/nonexistent/testcloud.joblog')).toEqual([]);
  });
});

describe('ResumeFilter', () => {
  const entries = parseJobLog(
    [JOBLOG_HEADER, '1\th\t1\t1\t0\t0\t0\t0\tpassed', '2\th\t1\t1\t0\t0\t1\t0\tfailed', '3\th\t1\t1\t0\t0\t-1\t9\tkilled', '4\th\t1\t1\t0\t0\t0\t0\ttwice'].join('\n'),
  );

  it('--resume skips every finished command, each as often as it was logged', () => {
    const filter = new ResumeFilter(entries, false);
    expect(['passed', 'failed', 'killed', 'new', 'twice', 'twice'].map((cmd) => filter.skip(cmd))).toEqual([true, true, true, false, true, false]);
  });

  it('--resume-failed skips only the commands that passed', () => {
    const filter = new ResumeFilter(entries, true);
    expect(['passed', 'failed', 'killed', 'new'].map((cmd) => filter.skip(cmd))).toEqual([true, false, false, false]);
  });
});
