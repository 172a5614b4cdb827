/**
 * The one codec of the testcloud wire protocol, version 1. Every message is three ZeroMQ frames
 * (a ROUTER socket adds the peer's routing id in front, which is the socket's business, not ours):
 *
 *   frame 0  signature+version   5 bytes: "TCLD" (0x54 0x43 0x4c 0x44) then 0x01
 *   frame 1  message type        ASCII, upper case: READY, OK, JOB, QUEUED, RESULT, HELLO,
 *                                SUBMIT, ERROR, REQUEUE, CANCEL, HEARTBEAT, BYE
 *   frame 2  body                UTF-8 JSON object with the message's fields (no "type" key)
 *
 * decode() checks frames in that order and throws a ProtocolError whose code says which check
 * failed, so a receiver can count and drop garbage without parsing it further.
 */
import { ProtocolError } from './errors.js';
import type { Message, MessageType } from './messages.js';
import { bodyParsers } from './message-schemas.js';

export const PROTOCOL_SIGNATURE = 'TCLD';
export const PROTOCOL_VERSION = 1;
/** Default cap on one message (all frames), enforced by decode() and on the ZeroMQ sockets. */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

const HEADER = Buffer.from([0x54, 0x43, 0x4c, 0x44, PROTOCOL_VERSION]);

const TYPE_FRAMES = new Map<MessageType, Buffer>();
const TYPES_BY_NAME = new Map<string, MessageType>();
for (const type of Object.keys(bodyParsers) as MessageType[]) {
  TYPE_FRAMES.set(type, Buffer.from(type.toUpperCase(), 'ascii'));
  TYPES_BY_NAME.set(type.toUpperCase(), type);
}

export function encode(message: Message): Buffer[] {
  const { type, ...body } = message;
  return [HEADER, TYPE_FRAMES.get(type)!, Buffer.from(JSON.stringify(body), 'utf8')];
}

export interface DecodeOptions {
  /** Reject a message whose frames add up to more bytes than this. */
  maxMessageSize?: number;
}

export function decode(frames: readonly Buffer[], options: DecodeOptions = {}): Message {
  const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  let size = 0;
  for (const frame of frames) size += frame.length;
  if (size > max) {
    throw new ProtocolError('TESTCLOUD_PROTOCOL_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${max}`);
  }
  const header = frames[0];
  if (header === undefined || header.length !== HEADER.length || header.compare(HEADER, 0, 4, 0, 4) !== 0) {
    throw new ProtocolError('TESTCLOUD_PROTOCOL_SIGNATURE', 'not a testcloud message (bad signature frame)');
  }
  if (header[4] !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      'TESTCLOUD_PROTOCOL_VERSION',
      `protocol version ${header[4]} is not supported (this side speaks ${PROTOCOL_VERSION})`,
    );
  }
  if (frames.length !== 3) {
    throw new ProtocolError('TESTCLOUD_PROTOCOL_FRAMES', `expected 3 frames, got ${frames.length}`);
  }
  const typeName = frames[1]!.toString('latin1');
  const type = TYPES_BY_NAME.get(typeName);
  if (type === undefined) {
    throw new ProtocolError('TESTCLOUD_PROTOCOL_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(typeName.slice(0, 32))}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(frames[2]!.toString('utf8'));
  } catch (cause) {
    throw new ProtocolError('TESTCLOUD_PROTOCOL_JSON', `${typeName} body is not valid JSON`, { cause });
  }
  const parsed = bodyParsers[type](body, typeName) as object;
  return { type, ...parsed } as Message;
}
