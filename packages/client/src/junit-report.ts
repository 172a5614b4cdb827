import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { decodeStream, type JobResult } from '@testcloud/protocol';
import { describeFailure, isFailure } from './outcome.js';
import type { ReportSummary } from './report-summary.js';

/** Lines of stderr quoted in a <failure>; the whole of it is in <system-err>. */
const STDERR_TAIL_LINES = 30;

export interface JUnitOptions {
  /** The <testsuite name> and each <testcase classname>. */
  suite?: string;
  /** When the run started (for the timestamp attribute). */
  startedAt?: Date;
}

/**
 * `--junit FILE`: the run as JUnit XML, the dialect Jenkins, GitLab, GitHub test reporters,
 * Buildkite and CircleCI all read: one <testsuite> with one <testcase> per command, named by
 * the command, `time` in seconds. A command that ran and failed has a <failure> whose message
 * says why ("exit 3", "timed out") and whose text is the tail of its stderr; one that could not
 * start or was lost has an <error>; one a halt cancelled or a resume skipped is <skipped>.
 * Output goes in <system-out> and <system-err>, without terminal colour codes.
 */
export function renderJUnit(results: readonly JobResult[], summary: ReportSummary, options: JUnitOptions = {}): string {
  const suite = options.suite ?? 'testclient';
  const sorted = [...results].sort((a, b) => a.id - b.id);
  const errors = sorted.filter((r) => isFailure(r) && isError(r)).length;
  const failures = sorted.filter((r) => isFailure(r) && !isError(r)).length;
  const skipped = summary.notRun.length + summary.skipped.length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const counts = attributes({
    tests: sorted.length + skipped,
    failures,
    errors,
    skipped,
    time: seconds(summary.elapsed),
    timestamp: (options.startedAt ?? new Date()).toISOString().replace(/\.\d+Z$/, ''),
  });
  const cases: string[] = [];
  for (const result of sorted) {
    const head = `    <testcase ${attributes({ name: result.cmd, classname: suite, time: seconds(result.duration) })}`;
    const body: string[] = [];
    if (isFailure(result)) {
      const tag = isError(result) ? 'error' : 'failure';
      const type = result.stopped ?? (result.signal !== null ? 'signal' : result.error !== null ? 'error' : 'exit');
      body.push(`      <${tag} ${attributes({ message: describeFailure(result), type })}>${escape(tail(stream(result, 'stderr'), STDERR_TAIL_LINES))}</${tag}>`);
    }
    const out = stream(result, 'stdout');
    const err = stream(result, 'stderr');
    if (out !== '') body.push(`      <system-out>${escape(out)}</system-out>`);
    if (err !== '') body.push(`      <system-err>${escape(err)}</system-err>`);
    cases.push(body.length === 0 ? `${head}/>` : `${head}>\n${body.join('\n')}\n    </testcase>`);
  }
  const skip = (cmd: string, message: string) =>
    `    <testcase ${attributes({ name: cmd, classname: suite, time: '0.000' })}>\n      <skipped ${attributes({ message })}/>\n    </testcase>`;
  for (const cmd of summary.notRun) cases.push(skip(cmd, `not run: ${summary.halted ?? 'the run halted'}`));
  for (const cmd of summary.skipped) cases.push(skip(cmd, `not run: ${summary.skipReason}`));
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${attributes({ name: suite })} ${counts}>`,
    `  <testsuite ${attributes({ name: suite, hostname: hostname() })} ${counts}>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function writeJUnit(file: string, results: readonly JobResult[], summary: ReportSummary, options: JUnitOptions = {}): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, renderJUnit(results, summary, options));
}

/** Could not start, or lost with its workers: an error of the run rather than a failing test. */
function isError(result: JobResult): boolean {
  return result.stopped === 'lost' || (result.error !== null && result.exitcode === null && result.signal === null && result.stopped === null);
}

function stream(result: JobResult, name: 'stdout' | 'stderr'): string {
  const raw = name === 'stdout' ? result.stdout : result.stderr;
  const encoding = name === 'stdout' ? result.stdoutEncoding : result.stderrEncoding;
  // Bytes that are not UTF-8 become U+FFFD: XML can only carry text.
  return encoding === 'utf8' ? raw : decodeStream(raw, encoding).toString('utf8');
}

function tail(value: string, lines: number): string {
  const all = value.replace(/\n$/, '').split('\n');
  return all.length <= lines ? all.join('\n') : `[… ${all.length - lines} earlier lines in system-err]\n${all.slice(-lines).join('\n')}`;
}

function attributes(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([name, value]) => `${name}="${escape(String(value)).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;')}"`)
    .join(' ');
}

/** Escapes markup, drops terminal escape sequences, and replaces what XML 1.0 cannot hold. */
function escape(value: string): string {
  return value
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g, '')
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}
