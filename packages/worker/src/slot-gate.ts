import type { CancelSignal } from './executor.js';

/** Lets at most `size` callers through at once; the others wait their turn, in order. */
export class SlotGate {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  /** Resolves true once the caller holds a slot, or false if `signal` aborts first (no slot held). */
  enter(signal?: CancelSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(admit), 1);
        resolve(false);
      };
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      this.waiting.push(admit);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives the slot to the next caller waiting, if any. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
