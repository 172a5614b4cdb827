import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { hashResults } from '@testcloud/protocol';
import { ROOT } from './processes.js';

/** One result as testclient printed it. */
export interface PrintedResult {
  status: 'OK!' | 'FAIL!';
  cmd: string;
  /** What the reporter said after the time on a FAIL! line: "exit 3", "killed by SIGKILL". */
  reason: string | undefined;
  /** Everything printed under the header up to the next one, including the closing blank line. */
  body: string;
}

const HEADER = /^(OK!|FAIL!) (.*) ⌚[^(\n]*?(?: \((.*)\))?$/gm;
const SUMMARY = /^(All commands successfully executed|\d+ of \d+ commands failed:)/m;

/** Splits testclient's human output into its results, keyed by command (commands must be unique). */
export function parseResults(stdout: string): Map<string, PrintedResult> {
  const summaryAt = stdout.search(SUMMARY);
  // The count line comes once stdin is read, which may be after the first results.
  const text = (summaryAt === -1 ? stdout : stdout.slice(0, summaryAt)).replace(/^Releasing the hounds: .*\n/m, '');
  const headers = [...text.matchAll(HEADER)];
  const results = new Map<string, PrintedResult>();
  headers.forEach((match, i) => {
    const bodyStart = match.index! + match[0].length + 1;
    const bodyEnd = i + 1 < headers.length ? headers[i + 1]!.index! : text.length;
    const cmd = match[2]!;
    if (results.has(cmd)) throw new Error(`${cmd} was printed twice:\n${stdout}`);
    results.set(cmd, { status: match[1] as PrintedResult['status'], cmd, reason: match[3], body: text.slice(bodyStart, bodyEnd) });
  });
  return results;
}

/** Number of results printed so far. */
export function countResults(stdout: string): number {
  return stdout.match(HEADER)?.length ?? 0;
}

/** A command run here with `sh -c`, as a worker would run it. */
export interface LocalRun {
  cmd: string;
  exitcode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

export function runHere(cmd: string, cwd = ROOT): LocalRun {
  const run = spawnSync('sh', ['-c', cmd], { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  if (run.error) throw run.error;
  return { cmd, exitcode: run.status, signal: run.signal, stdout: run.stdout, stderr: run.stderr };
}

/** The result hash of commands run here one by one, computed with the protocol's own hashResults. */
export function hashOfRuns(runs: LocalRun[]): string {
  return hashResults(
    runs.map((run, id) => ({ id, cmd: run.cmd, exitcode: run.exitcode, signal: run.signal, stdout: run.stdout.toString('base64'), stdoutEncoding: 'base64' as const })),
  );
}

/** What testclient prints under a result's header for a command that ran like `run`. */
export function expectedBody(run: LocalRun): string {
  const failed = run.exitcode !== 0;
  const stream = (bytes: Buffer) => (bytes.length === 0 ? '' : bytes.toString('utf8') + (bytes[bytes.length - 1] === 0x0a ? '' : '\n'));
  return `${stream(run.stdout)}${failed ? stream(run.stderr) : ''}\n`;
}

/** A loopback port nobody listens on: bound by the OS for us, then released. */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The lines of a CLI's stderr other than the "Run 'x --help' for usage." hint after a usage error. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line !== '' && !/^Run '\w+ --help' for usage\.$/.test(line));
}
