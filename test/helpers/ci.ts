import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/** A fresh directory, removed when the test finishes. */
export function tempDir(prefix = 'testcloud-ci-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Commands as testclient's stdin: one per line. */
export function lines(commands: readonly string[]): string {
  return commands.map((cmd) => `${cmd}\n`).join('');
}

/** The lines of a file, without the empty one after the last newline ([] when it is missing). */
export function fileLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

/** Parses NDJSON: every non-empty line must be a JSON object. */
export function ndjson(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The result headers testclient printed ("OK! cmd …" / "FAIL! cmd …"), in order, as [status, cmd]. */
export function printedOrder(stdout: string): Array<[string, string]> {
  return [...stdout.matchAll(/^(OK!|FAIL!) (.*?) ⌚/gm)].map((m) => [m[1]!, m[2]!]);
}
