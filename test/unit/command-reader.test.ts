import { describe, it, expect } from 'vitest';
import { readCommands } from '@testcloud/client';

async function* chunks(...parts: Array<string | number[] | Buffer>): AsyncGenerator<Buffer> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part);
}

async function batches(input: AsyncIterable<Buffer>): Promise<string[][]> {
  const out: string[][] = [];
  for await (const batch of readCommands(input)) out.push(batch);
  return out;
}

async function lines(input: AsyncIterable<Buffer>): Promise<string[]> {
  return (await batches(input)).flat();
}

describe('readCommands', () => {
  it('yields one command per line, in order', async () => {
    expect(await lines(chunks('echo a\necho b\necho c\n'))).toEqual(['echo a', 'echo b', 'echo c']);
  });

  it('skips blank and whitespace-only lines', async () => {
    expect(await lines(chunks('\n\necho a\n   \n\t\necho b\n\n'))).toEqual(['echo a', 'echo b']);
  });

  it('yields nothing for empty input', async () => {
    expect(await batches(chunks())).toEqual([]);
    expect(await batches(chunks('\n\n'))).toEqual([]);
  });

  it('keeps a last line that has no newline', async () => {
    expect(await lines(chunks('echo a\necho b'))).toEqual(['echo a', 'echo b']);
  });

  it('drops the \\r of CRLF line ends, also when \\r and \\n arrive in different chunks', async () => {
    expect(await lines(chunks('echo a\r\necho b\r\n\r\necho c\r'))).toEqual(['echo a', 'echo b', 'echo c']);
    expect(await lines(chunks('echo a\r', '\necho b'))).toEqual(['echo a', 'echo b']);
  });

  it('keeps a \\r that is not at the end of a line', async () => {
    expect(await lines(chunks("printf 'a\rb'\n"))).toEqual(["printf 'a\rb'"]);
  });

  it('joins a line split across chunks', async () => {
    expect(await lines(chunks('ec', 'ho a\nech', 'o b', '\n', 'echo c'))).toEqual(['echo a', 'echo b', 'echo c']);
  });

  it('decodes a multi-byte UTF-8 character split across chunks', async () => {
    const text = Buffer.from('echo café 🚀\n', 'utf8');
    const e = text.indexOf(0xc3); // é is c3 a9
    const rocket = text.indexOf(0xf0); // 🚀 is f0 9f 9a 80
    const parts = [text.subarray(0, e + 1), text.subarray(e + 1, rocket + 1), text.subarray(rocket + 1, rocket + 3), text.subarray(rocket + 3)];
    expect(await lines(chunks(...parts))).toEqual(['echo café 🚀']);
  });

  it('decodes a split character at the very end of the input', async () => {
    const text = Buffer.from('echo é', 'utf8');
    expect(await lines(chunks(text.subarray(0, text.length - 1), text.subarray(text.length - 1)))).toEqual(['echo é']);
  });

  it('yields the complete lines of each read as one batch', async () => {
    expect(await batches(chunks('a\nb\nc', '\nd\n'))).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it('reads one byte at a time', async () => {
    const text = Buffer.from('echo ü\r\n\nfalse\n', 'utf8');
    expect(await lines(chunks(...[...text].map((byte) => [byte])))).toEqual(['echo ü', 'false']);
  });
});
