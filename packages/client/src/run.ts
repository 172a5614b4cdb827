import { randomBytes } from 'node:crypto';
import {
  Channel,
  DEFAULT_MAX_MESSAGE_SIZE,
  ResultHasher,
  type JobResult,
  type Message,
  type SubmittedCommand,
} from '@testcloud/protocol';
import { Dealer } from 'zeromq';
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
  /** Most commands submitted and not yet answered; stdin is read only as room frees up. */
  window?: number;
  maxMessageSize?: number;
  observer?: RunObserver;
  /** Name the broker logs for this client. */
  name?: string;
}

export interface RunSummary {
  total: number;
  failed: number;
  /** Client ids of the failed commands, in input order. */
  failedCommands: string[];
  hash: string;
  elapsed: number;
}

/** Most commands in one SUBMIT: keeps each message far below --max-message-size. */
const SUBMIT_BATCH = 512;

export function isFailure(result: JobResult): boolean {
  return result.exitcode !== 0;
}

/**
 * Submits every command to the broker and resolves when each has exactly one result.
 */
export async function runCommands(options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const window = options.window ?? 10_000;
  const socket = new Dealer({
    linger: 0,
    maxMessageSize,
    routingId: `c-${randomBytes(8).toString('hex')}`,
    sendHighWaterMark: 0,
    receiveHighWaterMark: 0,
  });
  socket.connect(options.broker);
  options.observer?.connected?.(options.broker);
  let protocolErrors = 0;
  const channel = new Channel(socket, {
    maxMessageSize,
    onDropped: (error) => {
      if (protocolErrors++ === 0) options.observer?.warning?.(`dropped a bad message from the broker (${error.code}: ${error.message})`);
    },
  });
  const incoming = channel.messages();
  try {
    channel.send({ type: 'hello', client: options.name ?? `testclient:${process.pid}` });
    await expectOk(incoming, options.broker, options.connectTimeout ?? 5000);

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
    const checkDone = () => {
      if (total >= 0 && pending.size === 0) finish();
    };

    void (async () => {
      let nextId = 0;
      for await (const lines of options.commands) {
        for (let i = 0; i < lines.length; i += SUBMIT_BATCH) {
          const jobs: SubmittedCommand[] = lines.slice(i, i + SUBMIT_BATCH).map((cmd) => ({ id: nextId++, cmd }));
          for (const job of jobs) pending.set(job.id, job.cmd);
          channel.send({ type: 'submit', jobs });
        }
        while (pending.size >= window) await new Promise<void>((resolve) => (roomWaiter = resolve));
      }
      total = nextId;
      options.observer?.counted?.(total);
      checkDone();
    })().catch(abort);

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
          return;
        case 'error':
          throw new ClientError('TESTCLOUD_BROKER_REJECTED', `the broker refused: ${message.message}`);
        case 'bye':
          throw new ClientError(
            'TESTCLOUD_BROKER_GONE',
            `the broker at ${options.broker} went away (${message.reason}) with ${pending.size} command(s) unfinished`,
          );
        case 'queued':
        case 'heartbeat':
        case 'ok':
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

    void (async () => {
      for await (const message of incoming) {
        handle(message);
        checkDone();
      }
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
    socket.close();
  }
}

async function expectOk(incoming: AsyncGenerator<Message>, endpoint: string, timeout: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeout);
  });
  try {
    for (;;) {
      const next = await Promise.race([incoming.next(), expired]);
      if (next === 'timeout' || next.done) {
        throw new ClientError(
          'TESTCLOUD_BROKER_UNREACHABLE',
          `cannot connect to broker at ${endpoint} after ${timeout / 1000}s: is testbroker running there?`,
        );
      }
      if (next.value.type === 'ok') return;
    }
  } finally {
    clearTimeout(timer);
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled message ${JSON.stringify(value)}`);
}
