import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { lines, ndjson, tempDir } from '../helpers/ci.js';
import { ROOT, runClient } from '../helpers/processes.js';

/**
 * A handful of this repository's own unit test files (quick ones that start no processes):
 * each `npx vitest run FILE` costs a vitest start-up, so all of them would only add minutes.
 */
const FILES = ['codec', 'units', 'command-reader', 'result-hash', 'priority-deque', 'timings-file']
  .map((name) => `test/unit/${name}.test.ts`)
  .filter((file) => existsSync(join(ROOT, file)));

// The commands run vitest again: a child run carries TESTCLOUD_FANOUT, so if this file were
// ever among them it would skip itself instead of fanning out again.
describe.skipIf(process.env.TESTCLOUD_FANOUT !== undefined)('fanning out a real test suite', () => {
  it("runs this repository's unit test files through --local 2, one vitest per line, all passing", async () => {
    expect(FILES.length).toBeGreaterThanOrEqual(4);
    expect(FILES.some((file) => file.includes('fanout'))).toBe(false);
    const dir = tempDir();
    const junit = join(dir, 'junit.xml');
    const commands = FILES.map((file) => `npx vitest run ${file}`);
    const run = await runClient(['--local', '2', '--json', '--junit', junit, '--env', 'TESTCLOUD_FANOUT=1'], lines(commands), { cwd: ROOT });

    expect(run.code, run.proc.describe()).toBe(0);
    const objects = ndjson(run.stdout);
    const results = objects.filter((o) => o.type === 'result');
    expect(results.map((r) => r.cmd).sort()).toEqual([...commands].sort());
    for (const result of results) {
      expect(result.status, `${result.cmd}\n${result.stdout}\n${result.stderr}`).toBe('passed');
      // vitest's own verdict, not just its exit code.
      expect(result.stdout).toMatch(/Test Files\s+.*\d+ passed/);
      expect(result.stdout).not.toMatch(/\d+ failed/);
    }
    expect(objects.at(-1)).toMatchObject({ type: 'summary', total: FILES.length, passed: FILES.length, failed: 0 });

    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'testcase' }).parse(readFileSync(junit, 'utf8'), true);
    expect(doc.testsuites).toMatchObject({ tests: String(FILES.length), failures: '0', errors: '0' });
  }, 120_000);
});
