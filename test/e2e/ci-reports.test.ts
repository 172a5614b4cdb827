import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { errorLines } from '../helpers/report.js';
import { lines, ndjson, printedOrder, tempDir } from '../helpers/ci.js';
import { printedHash, runClient } from '../helpers/processes.js';

/** A small suite with every kind of outcome a CI report has to show. */
const SUITE = [
  'echo pass-1',
  'echo "assertion failed: 1 != 2" >&2; exit 3',
  'echo pass-2; echo a-warning >&2',
  'kill -9 $$',
  "printf 'out <&> \\033[31mred\\033[0m\\n'",
  'no-such-command-testcloud',
];
const FAILED = ['echo "assertion failed: 1 != 2" >&2; exit 3', 'kill -9 $$', 'no-such-command-testcloud'];

// fast-xml-parser: a maintained, dependency-light, spec-following parser (not a regex) that
// rejects malformed XML, so "CI systems can read it" is checked by a real reader.
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' || name === 'testsuite' });

describe('--junit FILE', () => {
  it('writes a testsuite with a testcase per command and a failure (exit code, stderr tail) for each failed one', async () => {
    const dir = tempDir();
    const file = join(dir, 'junit.xml');
    const run = await runClient(['--local', '2', '--junit', file], lines(SUITE));
    expect(run.code, run.proc.describe()).toBe(1);

    const doc = parser.parse(readFileSync(file, 'utf8'), true);
    const suites = doc.testsuites;
    expect(suites).toMatchObject({ tests: '6', failures: '3', errors: '0', skipped: '0' });
    expect(suites.testsuite).toHaveLength(1);
    const cases: Array<Record<string, any>> = suites.testsuite[0].testcase;
    expect(cases.map((c) => c.name)).toEqual(SUITE);
    for (const c of cases) {
      expect(c.classname).toBe('testclient');
      expect(Number(c.time)).toBeGreaterThanOrEqual(0);
    }
    const byName = new Map(cases.map((c) => [c.name as string, c]));
    expect(byName.get(SUITE[1])!.failure).toMatchObject({ message: 'exit 3', type: 'exit', '#text': 'assertion failed: 1 != 2' });
    expect(byName.get(SUITE[3])!.failure).toMatchObject({ message: 'killed by SIGKILL', type: 'signal' });
    expect(byName.get(SUITE[5])!.failure).toMatchObject({ message: 'exit 127', type: 'exit' });
    expect(byName.get(SUITE[5])!.failure['#text']).toContain('not found');
    expect(byName.get(SUITE[0])!['system-out']).toBe('pass-1');
    expect(byName.get(SUITE[0])!.failure).toBeUndefined();
    expect(byName.get(SUITE[4])!['system-out']).toBe('out <&> red');
    const failedNames = cases.filter((c) => c.failure !== undefined).map((c) => c.name);
    expect(failedNames).toEqual(FAILED);
  });
});

describe('--junit FILE that cannot be written', () => {
  it('is refused before anything runs (exit 2)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a-file'), '');
    const file = join(dir, 'a-file', 'junit.xml');
    const run = await runClient(['--local', '1', '--junit', file], `touch ${join(dir, 'ran')}\n`);
    expect(run.code, run.proc.describe()).toBe(2);
    const [line, ...more] = errorLines(run.stderr);
    expect(line?.startsWith(`testclient: cannot write the JUnit report ${file}: `), run.proc.describe()).toBe(true);
    expect(more).toEqual([]);
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });
});

describe('--json', () => {
  it('prints an NDJSON object per result and a summary whose counts and hash match the human output', async () => {
    const human = await runClient(['--local', '2'], lines(SUITE));
    const json = await runClient(['--local', '2', '--json'], lines(SUITE));
    expect(json.code, json.proc.describe()).toBe(human.code);
    expect(json.stderr).toBe('');

    const objects = ndjson(json.stdout);
    const results = objects.filter((o) => o.type === 'result');
    const summary = objects.at(-1)!;
    expect(objects.filter((o) => o.type === 'summary')).toHaveLength(1);
    expect(summary.type).toBe('summary');

    const printed = printedOrder(human.stdout);
    expect(results).toHaveLength(printed.length);
    expect(summary).toMatchObject({
      total: SUITE.length,
      passed: printed.filter(([status]) => status === 'OK!').length,
      failed: printed.filter(([status]) => status === 'FAIL!').length,
      hash: printedHash(human.stdout),
      halted: null,
    });
    expect(summary.failedCommands).toEqual(FAILED);
    expect(new Set(results.filter((r) => r.status === 'failed').map((r) => r.cmd))).toEqual(new Set(FAILED));
    const killed = results.find((r) => r.cmd === 'kill -9 $$')!;
    expect(killed).toMatchObject({ status: 'failed', reason: 'killed by SIGKILL', exitcode: null, signal: 'SIGKILL' });
    expect(results.find((r) => r.cmd === SUITE[2])).toMatchObject({ status: 'passed', stdout: 'pass-2\n', stderr: 'a-warning\n', stdoutEncoding: 'utf8' });
  });

  it('leaves out passed results with --quiet but keeps the summary', async () => {
    const json = await runClient(['--local', '2', '--json', '--quiet'], lines(SUITE));
    const objects = ndjson(json.stdout);
    expect(objects.filter((o) => o.type === 'result').map((o) => o.status)).toEqual(['failed', 'failed', 'failed']);
    expect(objects.at(-1)).toMatchObject({ type: 'summary', passed: 3, failed: 3 });
  });
});
