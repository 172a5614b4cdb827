import type { JobResult } from '@testcloud/protocol';

/**
 * `--keep-order`: hands results on in input order (ids 0, 1, 2…), holding back the ones that
 * finish early. Only output waits: everything else (the job log, timings, the progress line)
 * sees each result as it arrives.
 */
export class OrderedOutput {
  private readonly early = new Map<number, JobResult>();
  private next = 0;

  constructor(private readonly emit: (result: JobResult) => void) {}

  /** Results held back, waiting for an earlier one. */
  get waiting(): number {
    return this.early.size;
  }

  add(result: JobResult): void {
    if (result.id < this.next) return;
    this.early.set(result.id, result);
    for (let ready = this.early.get(this.next); ready !== undefined; ready = this.early.get(this.next)) {
      this.early.delete(this.next++);
      this.emit(ready);
    }
  }

  /** Emits whatever is still held (a halted run leaves gaps), in id order. */
  flush(): void {
    for (const id of [...this.early.keys()].sort((a, b) => a - b)) this.emit(this.early.get(id)!);
    this.early.clear();
  }
}
