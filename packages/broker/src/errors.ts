import { TestcloudError } from '@testcloud/protocol';

export type BrokerErrorCode = 'TESTCLOUD_BIND_FAILED' | 'TESTCLOUD_INSECURE_BIND' | 'TESTCLOUD_BAD_ENDPOINT' | 'TESTCLOUD_BROKER_BAD_OPTION';

export class BrokerError extends TestcloudError {
  declare readonly code: BrokerErrorCode;

  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
