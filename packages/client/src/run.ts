import { BrokerLink, ResultHasher, type JobResult, type Message, type SubmittedCommand } from '@testcloud/protocol';
import { ClientError } from './errors.js';

export interface RunObserver {
  connected?(endpoint: string): void;
  /** Called once stdin is exhausted, with the number of commands read. */
  counted?(total: number): void;
  result?(result: JobResult): void;
  warning?(message: string): void;
}

export interface RunOptions {
  /** The broker's client endpoint. */
  broker: string;
  /** Batches of commands, in input order. */
  commands: AsyncIterable<string[]>;
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
  maxMessageSize?: number;
  observer?: RunObserver;
  /** Name the broker logs for this client. */
  name?: string;
  /** Aborting (Ctrl-C) says goodbye to the broker, which cancels our jobs, and rejects. */
  signal?: AbortSignal;
  /** CURVE: our key pair and the broker's public key. */
  curve?: { publicKey: string; secretKey: string; serverKey: string };
}

export interface RunSummary {
  total: number;
  failed: number;
  /** The failed commands, in input order. */
  failedCommands: string[];
  hash: string;
  elapsed: number;
}

/** Most commands in one SUBMIT: keeps each message far below --max-message-size. */
const SUBMIT_BATCH = 512;
export const DEFAULT_BROKER_TIMEOUT = 60_000;

export function isFailure(result: JobResult): boolean {
  return result.exitcode !== 0 || result.stopped !== null;
}

/**
 * Submits every command to the broker and resolves when each has exactly one result. If the
 * link drops or the broker restarts, every command without a result is submitted again; the
 * broker ignores ids it already holds, and late duplicates of a result are dropped here.
 */
export async function runCommands(options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  let window = options.window ?? 10_000;
  const pending = new Map<number, string>();
  const hasher = new ResultHasher();
  const failed = new Map<number, string>();
  let total = -1;
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

  const toJob = (id: number, cmd: string): SubmittedCommand => ({
    id,
    cmd,
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
          if (!pending.delete(result.id)) continue; // a late duplicate
          hasher.add(result);
          if (isFailure(result)) failed.set(result.id, result.cmd);
          options.observer?.result?.(result);
        }
        if (pending.size < window && roomWaiter) {
          roomWaiter();
          roomWaiter = undefined;
        }
        checkDone();
        return;
      case 'error':
        abort(new ClientError('TESTCLOUD_BROKER_REJECTED', `the broker refused: ${message.message}`));
        return;
      case 'queued':
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
      submit([...pending].map(([id, cmd]) => toJob(id, cmd)));
    },
    onLost: (reason) => options.observer?.warning?.(`lost the broker at ${options.broker}: ${reason}; reconnecting`),
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
            ? `cannot connect to broker at ${options.broker}: the security handshake failed (${link.handshakeError}); check --broker-key and that our key is in its --authorized-clients`
            : `cannot connect to broker at ${options.broker} after ${(options.connectTimeout ?? 5000) / 1000}s: is testbroker running there?`,
        ),
    );

    void (async () => {
      let nextId = 0;
      for await (const lines of options.commands) {
        const jobs = lines.map((cmd) => toJob(nextId++, cmd));
        for (const job of jobs) pending.set(job.id, job.cmd);
        submit(jobs);
        while (pending.size >= window) await new Promise<void>((resolve) => (roomWaiter = resolve));
      }
      total = nextId;
      options.observer?.counted?.(total);
      checkDone();
    })().catch(abort);

    await done;
    const failedIds = [...failed.keys()].sort((a, b) => a - b);
    return {
      total,
      failed: failedIds.length,
      failedCommands: failedIds.map((id) => failed.get(id)!),
      hash: hasher.digest(),
      elapsed: performance.now() - started,
    };
  } finally {
    clearInterval(watchdog);
    options.signal?.removeEventListener('abort', onAbort);
    await link.close(options.signal?.aborted ? 'client interrupted' : 'client done');
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled message ${JSON.stringify(value)}`);
}
