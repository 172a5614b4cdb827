/**
 * Reads commands, one per line, from a byte stream, yielding them in batches (whatever one read
 * delivered). Blank lines are skipped and a trailing "\r" is dropped. Because the consumer
 * awaits each batch, a fast producer (`yes true | testclient`) is held back by the stream's own
 * backpressure instead of filling memory.
 */
export async function* readCommands(input: AsyncIterable<Buffer | string>): AsyncGenerator<string[]> {
  let carry = '';
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of input) {
    const text = carry + (typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    const lines = text.split('\n');
    carry = lines.pop()!;
    const batch = clean(lines);
    if (batch.length > 0) yield batch;
  }
  const rest = clean([carry + decoder.decode()]);
  if (rest.length > 0) yield rest;
}

function clean(lines: string[]): string[] {
  const out: string[] = [];
  for (let line of lines) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() !== '') out.push(line);
  }
  return out;
}
