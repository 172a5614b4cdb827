/**
 * One line per event on stderr, prefixed with the program's name, so an operator running
 * `testbroker &` and `testworker &` in one terminal can tell who said what.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** Logs at most once per `intervalMs` for each key; returns whether it logged. */
  limited(key: string, message: string, intervalMs?: number): boolean;
}

export function createLogger(name: string, { quiet = false, write = (line: string) => process.stderr.write(line) } = {}): Logger {
  const last = new Map<string, number>();
  const emit = (message: string) => {
    if (!quiet) write(`${name}: ${message}\n`);
  };
  return {
    info: emit,
    warn: emit,
    limited(key, message, intervalMs = 60_000) {
      const now = Date.now();
      const previous = last.get(key);
      if (previous !== undefined && now - previous < intervalMs) return false;
      // Keys can come from peers (one per rejected address): forget the ones whose interval is over.
      if (last.size >= 1024) for (const [k, at] of last) if (now - at >= intervalMs) last.delete(k);
      last.set(key, now);
      emit(message);
      return true;
    },
  };
}
