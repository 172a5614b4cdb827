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
   * The worker with the most free slots, weighted: free slots times --weight, ties to the one
   * with fewer jobs; room in a worker's prefetch counts only once no worker has a free slot, so
   * a job never waits behind another while a slot is idle elsewhere. Workers named in `avoid`
   * (they already failed the job) are taken only when no other has room. Returns undefined
   * when every worker is full.
   */
  pickFree(avoid?: ReadonlySet<string>): WorkerRecord | undefined {
    let best: WorkerRecord | undefined;
    let bestSlots = 0;
    let bestRoom = 0;
    let fallback: WorkerRecord | undefined;
    for (const worker of this.byKey.values()) {
      const room = capacity(worker) - worker.running.size;
      if (room <= 0) continue;
      if (avoid !== undefined && avoid.size > 0 && avoid.has(worker.name)) {
        fallback ??= worker;
        continue;
      }
      const slots = Math.max(0, Math.min(worker.slots, capacity(worker)) - worker.running.size) * worker.weight;
      const weightedRoom = room * worker.weight;
      const better =
        best === undefined ||
        slots > bestSlots ||
        (slots === bestSlots && (weightedRoom > bestRoom || (weightedRoom === bestRoom && worker.running.size < best.running.size)));
      if (better) {
        best = worker;
        bestSlots = slots;
        bestRoom = weightedRoom;
      }
    }
    return best ?? fallback;
  }
}
