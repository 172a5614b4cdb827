import type { JobResult } from '@testcloud/protocol';
import type { Output } from './human-reporter.js';
import { describeFailure, isFailure } from './outcome.js';
import type { ReportSummary } from './report-summary.js';
import type { RunObserver } from './run.js';

/**
 * `--json`: NDJSON on stdout instead of the human format, one object per line.
 *
 *   {"type":"result","id":0,"cmd":"…","status":"passed"|"failed","reason":null|"exit 3",…}
 *   {"type":"skipped","cmd":"…","reason":"resume"}           a command an earlier run finished
 *   {"type":"summary","total":…,"passed":…,"failed":…,…}     the last line of a run that ended (none after Ctrl-C)
 *
 * Result objects carry every field of the protocol's result (stdout and stderr always, in
 * their wire encoding: "utf8" text or "base64" bytes) whatever --stderr says; --quiet leaves
 * out the passed ones. Warnings go to stderr, so stdout stays machine-readable.
 */
export class JsonReporter implements RunObserver {
  constructor(
    private readonly out: Output,
    private readonly err: Output,
    private readonly options: { quiet?: boolean } = {},
  ) {}

  warning(message: string): void {
    this.err.write(`testclient: ${message}\n`);
  }

  result(result: JobResult): void {
    const failed = isFailure(result);
    if (this.options.quiet && !failed) return;
    this.line({ type: 'result', id: result.id, cmd: result.cmd, status: failed ? 'failed' : 'passed', reason: failed ? describeFailure(result) : null, ...withoutIdentity(result) });
  }

  summary(summary: ReportSummary): void {
    for (const cmd of summary.skipped) this.line({ type: 'skipped', cmd, reason: 'resume' });
    for (const cmd of summary.notRun) this.line({ type: 'skipped', cmd, reason: 'halted' });
    const ran = summary.total - summary.notRun.length;
    this.line({
      type: 'summary',
      total: summary.total,
      passed: ran - summary.failed,
      failed: summary.failed,
      notRun: summary.notRun.length,
      skipped: summary.skipped.length,
      failedCommands: summary.failedCommands,
      halted: summary.halted,
      hash: summary.hash,
      elapsed: Math.round(summary.elapsed * 1000) / 1000,
    });
  }

  private line(value: object): void {
    this.out.write(`${JSON.stringify(value)}\n`);
  }
}

function withoutIdentity(result: JobResult): Omit<JobResult, 'id' | 'cmd'> {
  const { id: _id, cmd: _cmd, ...rest } = result;
  return rest;
}
