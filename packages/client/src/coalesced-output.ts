import type { Output } from './human-reporter.js';

const FLUSH_AT = 64 * 1024;

/**
 * stdout that gathers what one turn of the event loop prints into one write. A write to a pipe
 * or file costs Node ~10 µs however little it carries, and a run of tiny commands prints a line
 * or two per result, many results a turn. `beside` is the stream that shares the screen (stderr):
 * writing there first empties this one, so the two keep their order.
 */
export class CoalescedOutput implements Output {
  private chunks: Array<string | Buffer> = [];
  private binary = false;
  /** Characters or bytes gathered. */
  private size = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly out: Output) {}

  write(chunk: string | Buffer): boolean {
    if (chunk.length === 0) return true;
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (typeof chunk !== 'string') this.binary = true;
    // A turn can be long (a socket with thousands of results waiting): what it prints is not
    // held to its end.
    if (this.size >= FLUSH_AT) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush());
    return true;
  }

  /** Writes what is gathered now. */
  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.chunks.length === 0) return;
    const chunks = this.chunks;
    this.chunks = [];
    this.size = 0;
    const binary = this.binary;
    this.binary = false;
    if (chunks.length === 1) this.out.write(chunks[0]!);
    else if (binary) this.out.write(Buffer.concat(chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk))));
    else this.out.write(chunks.join(''));
  }

  /** An output that empties this one before each of its own writes (stderr beside stdout). */
  beside(other: Output): Output {
    return {
      write: (chunk) => {
        this.flush();
        return other.write(chunk);
      },
    };
  }
}
