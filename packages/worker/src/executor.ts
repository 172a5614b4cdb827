/** What a worker needs from whatever runs its commands: one call per job. */
export interface ExecRequest {
  cmd: string;
  cwd: string;
  /** Bytes kept per stream; the rest is counted and dropped. */
  maxOutput: number;
  /** Aborting kills the command's whole process group. */
  signal?: AbortSignal;
}

export interface ExecOutcome {
  exitcode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: number;
  stderrTruncated: number;
  /** Wall time in milliseconds. */
  duration: number;
  /** Why the command could not start, or null. */
  error: string | null;
}

export interface Executor {
  run(request: ExecRequest): Promise<ExecOutcome>;
  close?(): Promise<void>;
}
