import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/ci.js';
import { lptOrder } from '../../packages/client/dist/lpt-order.js';
import { ALPHA, STALE_AFTER, Timings } from '../../packages/client/dist/timings-file.js';

const ran = (cmd: string, duration: number, extra: Partial<{ stopped: 'cancelled' | 'lost' | 'timeout' | null; error: string | null; exitcode: number | null; signal: string | null }> = {}) => ({
  cmd,
  duration,
  stopped: null,
  error: null,
  exitcode: 0,
  signal: null,
  ...extra,
});

function tempFile(name: string): string {
  return join(tempDir('testcloud-timings-'), name);
}

describe('Timings (--timings FILE)', () => {
  it('keeps an exponential moving average of each command across runs', () => {
    const file = tempFile('t.json');
    const first = Timings.load(file);
    first.record(ran('a', 1000));
    first.save(file);
    const second = Timings.load(file);
    expect(second.estimate('a')).toBe(1000);
    second.record(ran('a', 2000));
    second.save(file);
    expect(Timings.load(file).estimate('a')).toBeCloseTo(1000 + ALPHA * 1000);
    expect(Timings.load(file).estimate('never ran')).toBeUndefined();
  });

  it('learns from failures and timeouts but not from cancelled, lost or unstartable commands', () => {
    const timings = Timings.empty();
    timings.record(ran('failed', 300, { exitcode: 1 }));
    timings.record(ran('timed out', 5000, { stopped: 'timeout', exitcode: null, signal: 'SIGTERM' }));
    timings.record(ran('cancelled', 10, { stopped: 'cancelled', exitcode: null }));
    timings.record(ran('lost', 0, { stopped: 'lost', exitcode: null, error: 'lost' }));
    timings.record(ran('no such dir', 0, { exitcode: null, error: 'job directory "x" does not exist' }));
    expect(timings.estimate('failed')).toBe(300);
    expect(timings.estimate('timed out')).toBe(5000);
    expect(timings.estimate('cancelled')).toBeUndefined();
    expect(timings.estimate('lost')).toBeUndefined();
    expect(timings.estimate('no such dir')).toBeUndefined();
  });

  it('treats a missing file as no history and a corrupt one as no history with a warning', () => {
    const warnings: string[] = [];
    expect(Timings.load(tempFile('missing.json'), (m) => warnings.push(m)).size).toBe(0);
    expect(warnings).toEqual([]);
    const corrupt = tempFile('corrupt.json');
    writeFileSync(corrupt, '{"version": 1, "commands": {');
    expect(Timings.load(corrupt, (m) => warnings.push(m)).size).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(corrupt);
  });

  it(`forgets commands not seen for ${STALE_AFTER} runs, and a command may be called __proto__`, () => {
    const file = tempFile('t.json');
    writeFileSync(file, JSON.stringify({ version: 1, run: STALE_AFTER, commands: { old: { ms: 5, runs: 1, seen: 0 }, recent: { ms: 7, runs: 1, seen: STALE_AFTER } } }));
    const timings = Timings.load(file);
    timings.record(ran('__proto__', 42));
    timings.save(file);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(saved.commands).sort()).toEqual(['__proto__', 'recent']);
    expect(Timings.load(file).estimate('__proto__')).toBe(42);
    expect(saved.run).toBe(STALE_AFTER + 1);
  });

  it('does not rewrite the file when nothing ran', () => {
    const file = tempFile('t.json');
    expect(Timings.empty().save(file)).toBe(false);
    expect(() => readFileSync(file)).toThrow();
  });
});

describe('lptOrder', () => {
  const commands = ['short', 'new-1', 'long', 'mid', 'new-2', 'also-long'].map((cmd) => ({ cmd }));
  const history: Record<string, number> = { short: 10, long: 900, mid: 300, 'also-long': 900 };

  it('puts commands without history first in input order, then the rest longest first, ties in input order', () => {
    expect(lptOrder(commands, (cmd) => history[cmd]).map((c) => c.cmd)).toEqual(['new-1', 'new-2', 'long', 'also-long', 'mid', 'short']);
  });

  it('is the input order when there is no history at all', () => {
    expect(lptOrder(commands, () => undefined).map((c) => c.cmd)).toEqual(commands.map((c) => c.cmd));
  });
});
