import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { requireLoadsEsModules, runBundleIsCurrent } from '../../packages/client/dist/run-bundle.cjs';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
export type Binary = 'testbroker' | 'testworker' | 'testclient';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process whose output is captured, with waits that fail loudly, killed at test end. */
export class Proc {
  private out = '';
  private outBytes: Buffer[] = [];
  private err = '';
  private listeners = new Set<() => void>();
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    // stdout is kept as bytes too: a command's non-UTF-8 output is printed byte for byte.
    const stdoutText = new StringDecoder('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: Buffer) => {
      this.outBytes.push(chunk);
      this.out += stdoutText.write(chunk);
      this.notify();
    });
    child.stdout?.on('end', () => {
      this.out += stdoutText.end();
    });
    child.stderr?.on('data', (chunk: string) => {
      this.err += chunk;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get stdout(): string {
    return this.out;
  }

  /** stdout as the raw bytes the process wrote. */
  get stdoutBytes(): Buffer {
    return Buffer.concat(this.outBytes);
  }

  get stderr(): string {
    return this.err;
  }

  /** Both streams, for failure messages. */
  describe(): string {
    return `${this.name} (pid ${this.child.pid}, exit ${JSON.stringify(this.exit)})\n--- stdout ---\n${this.out}\n--- stderr ---\n${this.err}`;
  }

  /** Resolves with the first match of `pattern` in stdout+stderr (as printed so far or later). */
  waitForLine(pattern: RegExp, timeout = 10_000): Promise<RegExpMatchArray> {
    return this.waitFor(() => this.out.match(pattern) ?? this.err.match(pattern) ?? undefined, `a line matching ${pattern}`, timeout);
  }

  /** Resolves once `check` returns something other than undefined, re-checked on every output. */
  waitFor<T>(check: () => T | undefined, what: string, timeout = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) {
          cleanup();
          resolve(value);
        } else if (this.exit) {
          cleanup();
          reject(new Error(`${this.name} exited before printing ${what}\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}\n${this.describe()}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(attempt);
      };
      this.listeners.add(attempt);
      attempt();
    });
  }

  async waitForExit(timeout = 20_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for exit\n${this.describe()}`)), timeout);
    });
    try {
      return await Promise.race([this.exited, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exit) this.child.kill(signal);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

export interface SpawnOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  cwd?: string;
  /** Keep stdin open (for tests that write to it themselves). */
  keepStdin?: boolean;
}

/** Starts a program; it is SIGKILLed (if still running) and awaited when the test finishes. */
export function spawnProcess(name: string, command: string, args: string[], options: SpawnOptions = {}): Proc {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const proc = new Proc(name, child);
  if (options.input !== undefined) child.stdin!.end(options.input);
  else if (!options.keepStdin) child.stdin!.end();
  child.stdin!.on('error', () => {}); // a child that exits early closes its stdin
  onTestFinished(async () => {
    if (!proc.exit) {
      child.kill('SIGKILL');
      await once(child, 'close').catch(() => {});
    }
  });
  return proc;
}

export function spawnBin(binary: Binary, args: string[], options: SpawnOptions = {}): Proc {
  return spawnProcess(binary, process.execPath, [`${ROOT}/bin/${binary}.js`, ...args], options);
}

export interface BrokerHandle {
  proc: Proc;
  clients: string;
  workers: string;
}

/** A broker on ephemeral loopback ports; resolves once it prints where it listens. */
export async function startBroker(args: string[] = []): Promise<BrokerHandle> {
  const proc = spawnBin('testbroker', ['--clients', 'tcp://127.0.0.1:*', '--workers', 'tcp://127.0.0.1:*', ...args]);
  const match = await proc.waitForLine(/listening for clients on (\S+) and for workers on (\S+)/);
  return { proc, clients: match[1]!, workers: match[2]! };
}

/** A worker connected to `workers`; resolves once the broker has answered its READY. */
export async function startWorker(workers: string, args: string[] = []): Promise<Proc> {
  const proc = spawnBin('testworker', ['--broker', workers, ...args]);
  await proc.waitForLine(/connected to broker/);
  return proc;
}

export interface ClientRun {
  proc: Proc;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Pipes `input` into testclient and waits for it to exit. */
export async function runClient(args: string[], input: string | Buffer, options: SpawnOptions = {}): Promise<ClientRun> {
  const proc = spawnBin('testclient', args, { ...options, input });
  const exit = await proc.waitForExit(60_000);
  return { proc, code: exit.code, stdout: proc.stdout, stderr: proc.stderr };
}

/** The printed result hash of a client run. */
export function printedHash(stdout: string): string {
  const match = /result hash is ([0-9a-f]{40})/.exec(stdout);
  if (!match) throw new Error(`no result hash in:\n${stdout}`);
  return match[1]!;
}

/** Whether a process with this pid exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // kill(pid, 0) also succeeds for a zombie that its parent has not reaped yet.
  if (process.platform !== 'linux') return true;
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false; // gone between the two checks
  }
}

/**
 * Environment under which testclient runs from its compiled ES modules rather than its bundle
 * (cli.cts uses the bundle only where require() loads ES modules). Where Node cannot do that,
 * the bundle is not used anyway, and older Nodes refuse the flag.
 */
export const WITHOUT_BUNDLE: Record<string, string> = requireLoadsEsModules() ? { NODE_OPTIONS: '--no-experimental-require-module' } : {};

/** Whether testclient runs from its bundle here (built, current, loadable): as cli.cts decides. */
export { runBundleIsCurrent as clientBundleInUse };
