import { hostname } from 'node:os';
import { decodeStream, type JobResult } from '@testcloud/protocol';
import { describeFailure, isFailure } from './outcome.js';

/** Lines of stderr quoted in a <failure>; the whole of it is in <system-err>. */
const STDERR_TAIL_LINES = 30;

/**
 * A command in the report that has no result: `skipped` when it never ran (a halt cancelled it, a
 * resume skipped it, or the run was interrupted before a worker took it), `interrupted` when a
 * worker had it as the run was interrupted.
 */
export interface UnfinishedCase {
  cmd: string;
  kind: 'skipped' | 'interrupted';
  /** The <skipped> or <error> message. */
  message: string;
  /** The <error>'s text (interrupted only). */
  detail?: string;
  /** How long its worker had had it, in ms (interrupted only). */
  ms?: number;
}

export interface SuiteCounts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
}

/** How a result counts in the suite: a failing test, an error of the run, or neither. */
export function outcomeOf(result: JobResult): 'passed' | 'failure' | 'error' {
  return !isFailure(result) ? 'passed' : isError(result) ? 'error' : 'failure';
}

/** One <testcase> for a command that ran, with its failure and output. */
export function resultCase(result: JobResult, suite: string): string {
  const head = `    <testcase ${attributes({ name: result.cmd, classname: suite, time: seconds(result.duration) })}`;
  const body: string[] = [];
  const outcome = outcomeOf(result);
  if (outcome !== 'passed') {
    const tag = outcome;
    const type = result.stopped ?? (result.signal !== null ? 'signal' : result.error !== null ? 'error' : 'exit');
    body.push(`      <${tag} ${attributes({ message: describeFailure(result), type })}>${escape(tail(stream(result, 'stderr'), STDERR_TAIL_LINES))}</${tag}>`);
  }
  const out = stream(result, 'stdout');
  const err = stream(result, 'stderr');
  if (out !== '') body.push(`      <system-out>${escape(out)}</system-out>`);
  if (err !== '') body.push(`      <system-err>${escape(err)}</system-err>`);
  return body.length === 0 ? `${head}/>\n` : `${head}>\n${body.join('\n')}\n    </testcase>\n`;
}

/**
 * One <testcase> for a command without a result: <skipped>, or an <error> of type "interrupted".
 * The reason is both the `message` (which Jenkins shows) and the element's text (which GitLab shows).
 */
export function unfinishedCase(unfinished: UnfinishedCase, suite: string): string {
  const head = `    <testcase ${attributes({ name: unfinished.cmd, classname: suite, time: seconds(unfinished.ms ?? 0) })}>`;
  const text = unfinished.detail === undefined ? unfinished.message : `${unfinished.message}: ${unfinished.detail}`;
  const body =
    unfinished.kind === 'skipped'
      ? `      <skipped ${attributes({ message: unfinished.message })}>${escape(text)}</skipped>`
      : `      <error ${attributes({ message: unfinished.message, type: 'interrupted' })}>${escape(text)}</error>`;
  return `${head}\n${body}\n    </testcase>\n`;
}

/** What comes before the testcases: the declaration, and both suite elements with their counts. */
export function documentHead(suite: string, counts: SuiteCounts, elapsed: number, startedAt: Date): string {
  const totals = attributes({
    ...counts,
    time: seconds(elapsed),
    timestamp: startedAt.toISOString().replace(/\.\d+Z$/, ''),
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites ${attributes({ name: suite })} ${totals}>`,
    `  <testsuite ${attributes({ name: suite, hostname: hostname() })} ${totals}>`,
    '',
  ].join('\n');
}

export const DOCUMENT_TAIL = '  </testsuite>\n</testsuites>\n';

/** Could not start, or lost with its workers: an error of the run rather than a failing test. */
function isError(result: JobResult): boolean {
  return result.stopped === 'lost' || (result.error !== null && result.exitcode === null && result.signal === null && result.stopped === null);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
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
