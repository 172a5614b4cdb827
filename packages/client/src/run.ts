import { BrokerLink, ResultHasher, assertNever, type CurveSettings, type JobEnv, type JobResult, type Message, type SubmittedCommand } from '@testcloud/protocol';
import { ClientError } from './errors.js';
import type { HaltPolicy } from './halt-policy.js';
import { isFailure } from './outcome.js';

export interface RunObserver {
  connected?(endpoint: string): void;
  /** Called once stdin is exhausted, with the number of commands read. */
  counted?(total: number): void;
  /** A worker confirmed it started a command (once per attempt). */
  started?(id: number, worker: string | undefined): void;
  result?(result: JobResult): void;
  warning?(message: string): void;
}

/**
 * A command with the id the caller gave it (ids must be 0, 1, 2… over the whole run, in input
 * order, whatever the order of submission) and its priority at the broker (higher runs first).
 */
export interface PlannedCommand {
  id: number;
  cmd: string;
  priority?: number;
}

export interface RunOptions {
  /** The broker's client endpoint. */
  broker: string;
  /** Batches of commands, submitted in this order: plain strings are numbered 0, 1, 2… as read. */
  commands: AsyncIterable<Array<string | PlannedCommand>>;
  /** Give up if the broker has not answered HELLO within this many ms. */
  connectTimeout?: number;
  /** Give up once the broker has been out of reach this long in the middle of a run (ms). */
  brokerTimeout?: number;
  /** Most commands submitted and not yet answered; stdin is read only as room frees up. */
  window?: number;
  /** Per-command limits (ms) and re-runs after a failure, sent with every command. */
  timeout?: number;
  idleTimeout?: number;
  retries?: number;
  /** Variables set for every command, and its directory relative to the worker's --cwd. */
  env?: JobEnv;
  cwd?: string;
  /** Stops the run early (cancelling what is queued or running) once it says so. */
  halt?: HaltPolicy;
  maxMessageSize?: number;
  observer?: RunObserver;
  /** Name the broker logs for this client. */
  name?: string;
  /** Aborting (Ctrl-C) says goodbye to the broker, which cancels our jobs, and rejects. */
  signal?: AbortSignal;
  /** CURVE: our key pair and the broker's public key. */
  curve?: CurveSettings;
}

export interface RunSummary {
  /** Commands read (and submitted). */
  total: number;
  failed: number;
  /** The failed commands, in input order. */
  failedCommands: string[];
  /** The result hash; null when the run was halted, since not every command has a result. */
  hash: string | null;
  elapsed: number;
  /** Why the run stopped early (--fail-fast, --max-failures), or null when it ran to the end. */
  halted: string | null;
  /** Commands read but cancelled or never started because the run halted, in input order. */
  notRun: string[];
}

/** Most commands in one SUBMIT: keeps each message far below --max-message-size. */
const SUBMIT_BATCH = 512;
export const DEFAULT_BROKER_TIMEOUT = 60_000;

export { isFailure };

/**
 * Submits every command to the broker and resolves when each has exactly one result. If the
 * link drops or the broker restarts, every command without a result is submitted again; the
 * broker ignores ids it already holds, and late duplicates of a result are dropped here.
 */
export async function runCommands(options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  let window = options.window ?? 10_000;
  const pending = new Map<number, PlannedCommand>();
  const hasher = new ResultHasher();
  const failed = new Map<number, string>();
  let total = -1;
  let halted: string | null = null;
  let roomWaiter: (() => void) | undefined;
  let finish!: () => void;
  let abort!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    abort = reject;
  });
  done.catch(() => {}); // rejections are awaited below; this only stops an early one being "unhandled"
  let firstSession!: () => void;
  const connected = new Promise<void>((resolve) => (firstSession = resolve));

  const toJob = ({ id, cmd, priority }: PlannedCommand): SubmittedCommand => ({
    id,
    cmd,
    ...(priority ? { priority } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.timeout ? { timeout: options.timeout } : {}),
    ...(options.idleTimeout ? { idleTimeout: options.idleTimeout } : {}),
    ...(options.retries ? { retries: options.retries } : {}),
  });
  const submit = (jobs: SubmittedCommand[]) => {
    for (let i = 0; i < jobs.length; i += SUBMIT_BATCH) link.send({ type: 'submit', jobs: jobs.slice(i, i + SUBMIT_BATCH) });
  };
  const checkDone = () => {
    if (total >= 0 && pending.size === 0) finish();
  };

  const handle = (message: Message): void => {
    switch (message.type) {
      case 'result':
        for (const result of message.results) {
          if (halted !== null || !pending.delete(result.id)) continue; // a late duplicate, or after a halt
          hasher.add(result);
          if (isFailure(result)) failed.set(result.id, result.cmd);
          options.observer?.result?.(result);
          const reason = options.halt?.afterResult(result);
          if (reason !== undefined && (pending.size > 0 || total < 0)) {
            halted = reason;
            finish();
          }
        }
        if ((pending.size < window || halted !== null) && roomWaiter) {
          roomWaiter();
          roomWaiter = undefined;
        }
        checkDone();
        return;
      case 'error':
        abort(new ClientError('TESTCLOUD_BROKER_REJECTED', `the broker refused: ${message.message}`));
        return;
      case 'queued':
        for (const ref of message.jobs) if (pending.has(ref.id)) options.observer?.started?.(ref.id, ref.worker);
        return;
      case 'heartbeat':
      case 'ok':
      case 'bye':
      case 'ready':
      case 'job':
      case 'hello':
      case 'submit':
      case 'requeue':
      case 'cancel':
        return;
      default:
        return assertNever(message);
    }
  };

  const link = new BrokerLink({
    endpoint: options.broker,
    role: 'client',
    greeting: () => ({ type: 'hello', client: options.name ?? `testclient:${process.pid}` }),
    onMessage: handle,
    onSession: (session) => {
      if (session.window !== undefined) window = Math.min(options.window ?? 10_000, session.window);
      firstSession();
      if (pending.size === 0) return;
      options.observer?.warning?.(
        `${session.newBroker ? 'the broker restarted' : 'reconnected to the broker'}: resubmitting ${pending.size} command(s) without a result`,
      );
      submit([...pending.values()].map(toJob));
    },
    onLost: (reason) => options.observer?.warning?.(`lost the broker at ${options.broker}: ${reason}; reconnecting`),
    // Keys the broker refuses now will not be accepted in a moment either: fail at once.
    onHandshakeError: (reason) => {
      if (link.broker === undefined) abort(handshakeRefused(options.broker, reason));
    },
    ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
    ...(options.curve !== undefined ? { curve: options.curve } : {}),
  });

  const brokerTimeout = options.brokerTimeout ?? DEFAULT_BROKER_TIMEOUT;
  const watchdog = setInterval(() => {
    if (link.state === 'connecting' && Date.now() - link.downSince > brokerTimeout) {
      abort(
        new ClientError(
          'TESTCLOUD_BROKER_GONE',
          `the broker at ${options.broker} has been unreachable for ${brokerTimeout / 1000}s with ${pending.size} command(s) unfinished`,
        ),
      );
    }
  }, 250);
  const onAbort = () => abort(new ClientError('TESTCLOUD_INTERRUPTED', 'interrupted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });

  options.observer?.connected?.(options.broker);
  link.start();
  try {
    await withTimeout(
      Promise.race([connected, done]),
      options.connectTimeout ?? 5000,
      () =>
        new ClientError(
          'TESTCLOUD_BROKER_UNREACHABLE',
          link.handshakeError !== undefined
            ? handshakeRefused(options.broker, link.handshakeError).message
            : `cannot connect to broker at ${options.broker} after ${(options.connectTimeout ?? 5000) / 1000}s: is testbroker running there?`,
        ),
    );

    let read = 0;
    void (async () => {
      let nextId = 0;
      for await (const lines of options.commands) {
        if (halted !== null) break;
        const planned = lines.map((line) => (typeof line === 'string' ? { id: nextId++, cmd: line } : line));
        // One read of stdin can hold thousands of commands: never have more than the window
        // (ours, or the broker's --max-queued) submitted and unanswered.
        for (let i = 0; i < planned.length && halted === null; ) {
          while (pending.size >= window && halted === null) await new Promise<void>((resolve) => (roomWaiter = resolve));
          if (halted !== null) break;
          const chunk = planned.slice(i, i + window - pending.size);
          for (const command of chunk) pending.set(command.id, command);
          read += chunk.length;
          i += chunk.length;
          submit(chunk.map(toJob));
        }
      }
      if (halted !== null) return;
      total = read;
      options.observer?.counted?.(total);
      checkDone();
    })().catch(abort);

    await done;
    const failedIds = [...failed.keys()].sort((a, b) => a - b);
    return {
      total: halted === null ? total : read,
      failed: failedIds.length,
      failedCommands: failedIds.map((id) => failed.get(id)!),
      hash: halted === null ? hasher.digest() : null,
      elapsed: performance.now() - started,
      halted,
      notRun: halted === null ? [] : [...pending.values()].sort((a, b) => a.id - b.id).map((command) => command.cmd),
    };
  } finally {
    clearInterval(watchdog);
    options.signal?.removeEventListener('abort', onAbort);
    // After a halt, the goodbye is what cancels the rest: the broker drops our queued commands
    // and stops the running ones on their workers.
    await link.close(options.signal?.aborted ? 'client interrupted' : (halted ?? 'client done'));
  }
}

function handshakeRefused(endpoint: string, reason: string): ClientError {
  return new ClientError(
    'TESTCLOUD_BROKER_UNREACHABLE',
    `cannot connect to broker at ${endpoint}: the security handshake failed (${reason}); a CURVE broker needs --key and --broker-key, and our public key in its --authorized-clients`,
  );
}

async function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

