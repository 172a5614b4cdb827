import { execFileSync } from 'node:child_process';
import { constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

/**
 * A named pipe that commands write lines to, so a test can wait for "the job has started on
 * worker X" as an event: start workers with `TC_MARKS=<fifo>` in their environment and
 * `test/fixtures/mark LABEL` in a command writes "LABEL <worker pid>". The test holds the pipe
 * open for reading and writing: writers never block on open, and the read end never sees
 * end-of-file. Closed and removed when the test finishes.
 */
export class Marks {
  readonly dir: string;
  readonly fifo: string;
  private text = '';
  private readonly listeners = new Set<() => void>();
  private readonly socket: Socket;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'testcloud-marks-'));
    this.fifo = join(this.dir, 'marks');
    execFileSync('mkfifo', [this.fifo]);
    const fd = openSync(this.fifo, constants.O_RDWR | constants.O_NONBLOCK);
    this.socket = new Socket({ fd, readable: true, writable: false });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      this.text += chunk;
      for (const listener of [...this.listeners]) listener();
    });
    onTestFinished(() => {
      this.socket.destroy();
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** Every line written so far. */
  get lines(): string[] {
    return this.text.split('\n').filter((line) => line !== '');
  }

  /** The pids of the workers that wrote `label`, in order. */
  workers(label: string): number[] {
    return this.lines.filter((line) => line.startsWith(`${label} `)).map((line) => Number(line.slice(label.length + 1)));
  }

  /** Resolves with the worker pid of the `count`th line saying `label` (1 = the first). */
  waitFor(label: string, { count = 1, timeout = 10_000 } = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const pids = this.workers(label);
        if (pids.length < count) return;
        cleanup();
        resolve(pids[count - 1]!);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeout} ms waiting for ${count} mark(s) "${label}"; marks so far:\n${this.text}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}
