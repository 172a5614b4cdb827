import { TestcloudError } from '@testcloud/protocol';

export type ClientErrorCode =
  | 'TESTCLOUD_BROKER_UNREACHABLE'
  | 'TESTCLOUD_BROKER_GONE'
  | 'TESTCLOUD_CLIENT_BAD_OPTION'
  | 'TESTCLOUD_BROKER_REJECTED'
  | 'TESTCLOUD_INTERRUPTED';

export class ClientError extends TestcloudError {
  declare readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
