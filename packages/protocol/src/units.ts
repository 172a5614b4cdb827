import { TestcloudError } from './errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * "500ms", "5s", "2m", "1h", or a bare number of `defaultUnit`s, to whole milliseconds (rounded
 * up, so a positive duration never becomes 0 and the wire, which carries integers, accepts it).
 */
export function parseDuration(text: string | number, defaultUnit: 'ms' | 's' = 's'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(text));
  if (!match) throw new TestcloudError('TESTCLOUD_BAD_OPTION', `"${text}" is not a duration (try 500ms, 5s, 2m or 1h)`);
  return Math.ceil(Number(match[1]) * DURATION_UNITS[match[2] ?? defaultUnit]!);
}

const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** "1MiB", "512k", "4096" (bytes) to bytes. */
export function parseSize(text: string | number): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(String(text));
  const unit = SIZE_UNITS[(match?.[2] || 'b').toLowerCase()];
  if (!match || unit === undefined) throw new TestcloudError('TESTCLOUD_BAD_OPTION', `"${text}" is not a size (try 4096, 512KiB or 16MiB)`);
  return Math.floor(Number(match[1]) * unit);
}
