import { ProtocolError } from './errors.js';
import type { JobEnv, JobResult, MessageOfType, MessageType } from './messages.js';
import {
  array,
  boolean,
  nonNegativeNumber,
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

/**
 * A job's environment: a JSON object of strings. Names may not hold "=" or NUL, values not NUL
 * (neither can reach execve). The copy has no prototype, so a "__proto__" key stays a plain key.
 */
const jobEnv: Parser<JobEnv> = (v, path) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError('TESTCLOUD_PROTOCOL_INVALID', `${path}: expected an object of strings`);
  const out: JobEnv = Object.create(null) as JobEnv;
  for (const [name, value] of Object.entries(v)) {
    if (name === '' || /[=\0]/.test(name)) throw new ProtocolError('TESTCLOUD_PROTOCOL_INVALID', `${path}: ${JSON.stringify(name)} is not a variable name`);
    const text = string(value, `${path}.${name}`);
    if (text.includes('\0')) throw new ProtocolError('TESTCLOUD_PROTOCOL_INVALID', `${path}.${name}: a value may not contain NUL`);
    out[name] = text;
  }
  return out;
};

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
  duration: nonNegativeNumber,
  worker: string,
  error: nullable(string),
  stopped: nullable(literal('timeout', 'idle-timeout', 'cancelled', 'lost')),
  paused: optional(nonNegativeNumber),
});

type Body<T extends MessageType> = Omit<MessageOfType<T>, 'type'>;

/** One parser per message type: the validation half of the codec. */
export const bodyParsers: { [T in MessageType]: Parser<Body<T>> } = {
  ready: object({ worker: string, host: string, pid: nonNegativeInteger, slots: positiveInteger, weight: nonNegativeNumber, downstream: optional(boolean), prefetch: optional(nonNegativeInteger) }),
  queued: object({ jobs: array(jobRef, { min: 1 }) }),
  result: object({ results: array(jobResult, { min: 1 }) }),
  ok: object({ broker: string, heartbeat: nonNegativeInteger, window: optional(positiveInteger) }),
  job: object({
    jobs: array(
      object({
        id: nonNegativeInteger,
        cmd: string,
        attempt: positiveInteger,
        timeout: nonNegativeInteger,
        idleTimeout: nonNegativeInteger,
        env: optional(jobEnv),
        cwd: optional(string),
      }),
      { min: 1 },
    ),
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
        priority: optional(integer),
        env: optional(jobEnv),
        cwd: optional(string),
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
    load: optional(object({ load: nonNegativeNumber, cpu: nonNegativeNumber, freeMem: nonNegativeNumber })),
  }),
  bye: object({ reason: string }),
};
