/**
 * Base class of every error testcloud raises on purpose. `code` is stable and is what callers
 * match on; the message is for people and may change.
 */
export class TestcloudError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export type ProtocolErrorCode =
  | 'TESTCLOUD_PROTOCOL_SIGNATURE'
  | 'TESTCLOUD_PROTOCOL_VERSION'
  | 'TESTCLOUD_PROTOCOL_FRAMES'
  | 'TESTCLOUD_PROTOCOL_UNKNOWN_TYPE'
  | 'TESTCLOUD_PROTOCOL_JSON'
  | 'TESTCLOUD_PROTOCOL_INVALID'
  | 'TESTCLOUD_PROTOCOL_TOO_LARGE';

/** A message that could not be decoded. The receiver counts it, drops it and keeps serving. */
export class ProtocolError extends TestcloudError {
  declare readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
