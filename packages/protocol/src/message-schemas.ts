import type { JobResult, MessageOfType, MessageType } from './messages.js';
import {
  array,
  finiteNumber,
  integer,
  literal,
  nonNegativeInteger,
  nullable,
  object,
  optional,
  positiveInteger,
  string,
  type Parser,
} from './schema.js';

const encoding = literal('utf8', 'base64');
const jobRef = object({ id: nonNegativeInteger, attempt: positiveInteger, worker: optional(string) });

const jobResult: Parser<JobResult> = object({
  id: nonNegativeInteger,
  attempt: positiveInteger,
  cmd: string,
  exitcode: nullable(integer),
  signal: nullable(string),
  stdout: string,
  stderr: string,
  stdoutEncoding: encoding,
  stderrEncoding: encoding,
  stdoutTruncated: nonNegativeInteger,
  stderrTruncated: nonNegativeInteger,
  duration: finiteNumber,
  worker: string,
  error: nullable(string),
  stopped: nullable(literal('timeout', 'idle-timeout', 'cancelled', 'lost')),
  paused: optional(finiteNumber),
});

type Body<T extends MessageType> = Omit<MessageOfType<T>, 'type'>;

/** One parser per message type: the validation half of the codec. */
export const bodyParsers: { [T in MessageType]: Parser<Body<T>> } = {
  ready: object({ worker: string, host: string, pid: nonNegativeInteger, slots: positiveInteger, weight: finiteNumber }),
  queued: object({ jobs: array(jobRef, { min: 1 }) }),
  result: object({ results: array(jobResult, { min: 1 }) }),
  ok: object({ broker: string, heartbeat: nonNegativeInteger, window: optional(positiveInteger) }),
  job: object({
    jobs: array(object({ id: nonNegativeInteger, cmd: string, attempt: positiveInteger, timeout: nonNegativeInteger, idleTimeout: nonNegativeInteger }), { min: 1 }),
  }),
  hello: object({ client: string }),
  submit: object({
    jobs: array(
      object({
        id: nonNegativeInteger,
        cmd: string,
        timeout: optional(nonNegativeInteger),
        idleTimeout: optional(nonNegativeInteger),
        retries: optional(nonNegativeInteger),
      }),
      { min: 1 },
    ),
  }),
  error: object({ code: string, message: string, ids: array(nonNegativeInteger) }),
  requeue: object({ jobs: array(jobRef, { min: 1 }), reason: string }),
  cancel: object({ jobs: array(jobRef, { min: 1 }) }),
  heartbeat: object({
    broker: optional(string),
    state: optional(literal('idle', 'busy', 'saturated', 'paused', 'withheld', 'draining')),
    offered: optional(nonNegativeInteger),
    load: optional(object({ load: finiteNumber, cpu: finiteNumber, freeMem: finiteNumber })),
  }),
  bye: object({ reason: string }),
};
