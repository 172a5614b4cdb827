import { TestcloudError } from '@testcloud/protocol';

export type WorkerErrorCode = 'TESTCLOUD_WORKER_BAD_OPTION';

export class WorkerError extends TestcloudError {
  declare readonly code: WorkerErrorCode;

  constructor(code: WorkerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
