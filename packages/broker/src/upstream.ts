import { hostname } from 'node:os';
import { BrokerLink, type CurveSettings, type JobRef, type JobSpec, type Logger, type Message, type MessageOfType } from '@testcloud/protocol';
import type { Broker } from './broker.js';
import { syntheticResult } from './job-results.js';
import type { ClientRecord } from './records.js';

export interface UpstreamOptions {
  /** The parent broker's worker endpoint. */
  endpoint: string;
  /** Name this broker has among the parent's workers. */
  name: string;
  curve?: CurveSettings;
  logger: Logger;
}

/**
 * Chains brokers: this broker joins a parent broker as one worker whose slots are its own pool's
 * free capacity. The parent's jobs enter this broker's queue through an in-process client and
 * take turns with local clients; their results go back up under the parent's ids and attempts.
 * Each new session with the parent starts empty, as for any worker (the parent has requeued
 * whatever we held), so jobs of an old session are cancelled here.
 */
export class Upstream {
  private readonly link: BrokerLink;
  private client: ClientRecord | undefined;
  /** The parent's attempt number of each job we hold, by the parent's job key. */
  private readonly attempts = new Map<number, number>();

  constructor(
    private readonly broker: Broker,
    private readonly options: UpstreamOptions,
  ) {
    this.link = new BrokerLink({
      endpoint: options.endpoint,
      role: 'worker',
      greeting: () => this.ready(),
      heartbeat: () => this.heartbeat(),
      onMessage: (message) => this.onMessage(message),
      onSession: (session) => {
        options.logger.info(`joined the upstream broker at ${options.endpoint} (broker ${session.broker}) as ${options.name}`);
        this.link.send(this.heartbeat());
      },
      onLost: (reason) => options.logger.info(`lost the upstream broker at ${options.endpoint}: ${reason}; reconnecting`),
      logger: options.logger,
      ...(options.curve ? { curve: options.curve } : {}),
    });
  }

  start(): void {
    this.link.start();
  }

  async stop(): Promise<void> {
    await this.link.close('downstream broker shutting down');
  }

  private ready(): Message {
    if (this.client) this.broker.removeClient(this.client, 'was the upstream session, now over');
    this.attempts.clear();
    this.client = this.broker.attachLocalClient(`upstream ${this.options.endpoint}`, (message) => this.fromBroker(message));
    return { type: 'ready', worker: this.options.name, host: hostname(), pid: process.pid, slots: Math.max(1, this.broker.capacity()), weight: 1, downstream: true };
  }

  private heartbeat(): MessageOfType<'heartbeat'> {
    const offered = this.broker.capacity();
    const held = this.client?.jobs.size ?? 0;
    return { type: 'heartbeat', offered, state: offered === 0 ? 'withheld' : held === 0 ? 'idle' : held >= offered ? 'saturated' : 'busy' };
  }

  private onMessage(message: Message): void {
    const client = this.client;
    if (!client) return;
    switch (message.type) {
      case 'job': {
        for (const job of message.jobs) this.attempts.set(job.id, job.attempt);
        const refused = new Set(this.broker.accept(client, message.jobs.map(toSubmitted)));
        const taken: JobRef[] = [];
        const handBack: JobRef[] = [];
        for (const job of message.jobs) (refused.has(job.id) ? handBack : taken).push({ id: job.id, attempt: job.attempt });
        // Confirmed on arrival: the job is in our queue; the parent must not give it away.
        if (taken.length > 0) this.link.send({ type: 'queued', jobs: taken });
        if (handBack.length > 0) this.link.send({ type: 'requeue', jobs: handBack, reason: 'the downstream broker is full (--max-queued)' });
        return;
      }
      case 'cancel': {
        const refs = message.jobs.filter((ref) => this.attempts.get(ref.id) === ref.attempt);
        this.broker.cancel(client, refs.map((ref) => ref.id));
        for (const ref of refs) this.attempts.delete(ref.id);
        // Answer as a worker would: the parent frees the slot only when a RESULT says the job is over.
        if (refs.length > 0) this.link.send({ type: 'result', results: refs.map((ref) => syntheticResult({ ...ref, cmd: '' }, { error: null, stopped: 'cancelled', worker: this.options.name })) });
        return;
      }
      default:
        return; // OK, heartbeats and BYE are the link's; nothing else is for a worker
    }
  }

  /** What this broker would tell a client about the parent's jobs: results go up, the rest stays. */
  private fromBroker(message: Message): void {
    if (message.type !== 'result') return;
    const results = [];
    for (const result of message.results) {
      const attempt = this.attempts.get(result.id);
      if (attempt === undefined) continue;
      this.attempts.delete(result.id);
      results.push({ ...result, attempt, worker: `${this.options.name}/${result.worker}` });
    }
    if (results.length > 0) this.link.send({ type: 'result', results });
  }
}

function toSubmitted(job: JobSpec) {
  return {
    id: job.id,
    cmd: job.cmd,
    timeout: job.timeout,
    idleTimeout: job.idleTimeout,
    ...(job.env !== undefined ? { env: job.env } : {}),
    ...(job.cwd !== undefined ? { cwd: job.cwd } : {}),
  };
}
