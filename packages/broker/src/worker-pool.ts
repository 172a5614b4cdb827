import { capacity, type WorkerRecord } from './records.js';

/** The workers a broker knows, and which of them should take the next job. */
export class WorkerPool {
  private readonly byKey = new Map<string, WorkerRecord>();

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): WorkerRecord | undefined {
    return this.byKey.get(key);
  }

  add(worker: WorkerRecord): void {
    this.byKey.set(worker.key, worker);
  }

  delete(worker: WorkerRecord): void {
    this.byKey.delete(worker.key);
  }

  values(): IterableIterator<WorkerRecord> {
    return this.byKey.values();
  }

  totalSlots(): number {
    let total = 0;
    for (const worker of this.byKey.values()) total += worker.slots;
    return total;
  }

  /**
   * The worker with the most free capacity, weighted: free slots times --weight, ties to the one
   * with fewer jobs running. Workers named in `avoid` (they already failed the job) are taken
   * only when no other has room. Returns undefined when every slot is taken.
   */
  pickFree(avoid?: ReadonlySet<string>): WorkerRecord | undefined {
    let best: WorkerRecord | undefined;
    let bestScore = 0;
    let fallback: WorkerRecord | undefined;
    for (const worker of this.byKey.values()) {
      const free = capacity(worker) - worker.running.size;
      if (free <= 0) continue;
      if (avoid !== undefined && avoid.size > 0 && avoid.has(worker.name)) {
        fallback ??= worker;
        continue;
      }
      const score = free * worker.weight;
      if (best === undefined || score > bestScore || (score === bestScore && worker.running.size < best.running.size)) {
        best = worker;
        bestScore = score;
      }
    }
    return best ?? fallback;
  }
}
