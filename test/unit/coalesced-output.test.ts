import { describe, expect, it } from 'vitest';
import { CoalescedOutput } from '@testcloud/client';

/** A stream that records each write it gets, and to which of the two streams it went. */
function screen() {
  const writes: Array<[string, string]> = [];
  const stream = (name: string) => ({ write: (chunk: string | Buffer) => writes.push([name, chunk.toString()]) });
  return { writes, stdout: stream('out'), stderr: stream('err') };
}

describe('stdout gathered into one write per turn of the event loop', () => {
  it('writes what one turn printed once, after the turn', async () => {
    const { writes, stdout } = screen();
    const out = new CoalescedOutput(stdout);
    out.write('a\n');
    out.write(Buffer.from('b\n'));
    out.write('c\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([['out', 'a\nb\nc\n']]);
  });

  it('does not hold a long turn’s output to its end: it writes every 64 KiB', () => {
    const { writes, stdout } = screen();
    const out = new CoalescedOutput(stdout);
    const line = `${'x'.repeat(1023)}\n`;
    for (let k = 0; k < 64; k++) out.write(line);
    expect(writes).toEqual([['out', line.repeat(64)]]);
    out.write(line);
    expect(writes).toHaveLength(1);
  });

  it('keeps stdout and stderr in the order they were printed', () => {
    const { writes, stdout, stderr } = screen();
    const out = new CoalescedOutput(stdout);
    const err = out.beside(stderr);
    out.write('result 1\n');
    err.write('warning\n');
    out.write('result 2\n');
    out.flush();
    expect(writes).toEqual([
      ['out', 'result 1\n'],
      ['err', 'warning\n'],
      ['out', 'result 2\n'],
    ]);
  });
});
