import { statSync } from 'node:fs';
import { constants } from 'node:os';
import type { ExecOutcome, ExecRequest } from './executor.js';
import type { OutputCapture } from './output-capture.js';

/**
 * What the executors that start jobs away from Node (the bash launcher, the Python spawner)
 * share: the checks a request must pass before anything runs, and the outcomes they make up
 * themselves, worded as execa would word them.
 */

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/** `SIGTERM` for 15, as execa names the signal that ended a command. */
export function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}

/** Why a request cannot be run at all (a C string cannot hold it), or undefined. */
export function invalidRequest(request: ExecRequest): string | undefined {
  if (request.cmd.includes('\0')) return 'the command contains a NUL byte';
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) return `cannot set the environment variable ${JSON.stringify(name)}`;
  }
  return undefined;
}

/** The outcome of a job that never started: refused (`error`) or cancelled while it waited. */
export function notStarted(error: string | null, stopped: ExecOutcome['stopped']): ExecOutcome {
  const empty = Buffer.alloc(0);
  return { exitcode: null, signal: null, stdout: empty, stderr: empty, stdoutTruncated: 0, stderrTruncated: 0, duration: 0, error, stopped };
}

/** What a job that was started (or failed to start: `error`) leaves, as its executor saw it. */
export interface JobRecord {
  /** How its shell ended, if it did. */
  ended: { exitcode: number | null; signal: string | null } | undefined;
  error: string | null;
  stdout: OutputCapture;
  stderr: OutputCapture;
  duration: number;
  stopped: ExecOutcome['stopped'];
}

export function outcomeOf(job: JobRecord): ExecOutcome {
  const { ended, error } = job;
  return {
    exitcode: error === null ? ended?.exitcode ?? null : null,
    signal: error === null ? ended?.signal ?? null : null,
    stdout: job.stdout.bytes(),
    stderr: job.stderr.bytes(),
    stdoutTruncated: job.stdout.dropped,
    stderrTruncated: job.stderr.dropped,
    duration: job.duration,
    error,
    stopped: job.stopped,
  };
}

/** The error of a job whose directory could not be entered. */
export function cannotRunIn(cwd: string): string {
  return `cannot run in ${cwd}: ${directoryProblem(cwd)}`;
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function directoryProblem(cwd: string): string {
  try {
    return statSync(cwd).isDirectory() ? 'permission denied' : 'not a directory';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message;
  }
}
