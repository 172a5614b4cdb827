import type { Output } from './human-reporter.js';
import type { ProgressState } from './progress-state.js';

/** The terminal a status line is drawn on: a TTY stream. */
export interface Terminal extends Output {
  columns?: number;
}

const CLEAR = '\r\x1b[K';
/** Redraw at most this often for new results; the clock ticks once a second regardless. */
const MIN_INTERVAL = 100;

/**
 * The live status line (on a terminal only, on stderr). It never garbles results: everything
 * the reporters print goes through `guard()`, which wipes the line first and draws it again
 * once the turn of the event loop's writes are done. Writes to a TTY are synchronous, so
 * stdout and stderr keep their order on the screen.
 */
export class ProgressLine {
  private shown = false;
  private stopped = false;
  private lastDraw = 0;
  private pending: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly terminal: Terminal,
    private readonly state: ProgressState,
  ) {
    this.ticker = setInterval(() => this.draw(), 1000);
    this.ticker.unref();
  }

  /** An output that clears the status line before each write and redraws it after. */
  guard(out: Output): Output {
    return {
      write: (chunk) => {
        this.clear();
        const written = out.write(chunk);
        this.update();
        return written;
      },
    };
  }

  /** The state changed: redraw soon (right away when it has been a while). */
  update(): void {
    if (this.stopped || this.pending !== undefined) return;
    const wait = MIN_INTERVAL - (Date.now() - this.lastDraw);
    const redraw = () => {
      this.pending = undefined;
      this.draw();
    };
    this.pending = wait <= 0 ? setImmediate(redraw) : setTimeout(redraw, wait);
    this.pending.unref();
  }

  /** Wipes the line for good (before the summary). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    if (this.pending !== undefined) {
      clearTimeout(this.pending as NodeJS.Timeout);
      clearImmediate(this.pending as NodeJS.Immediate);
      this.pending = undefined;
    }
    this.clear();
  }

  private draw(): void {
    if (this.stopped) return;
    const width = Math.max((this.terminal.columns || 80) - 1, 10);
    let text = this.state.render();
    // A line that wraps cannot be wiped with \r: keep it within one row.
    if (text.length > width) text = `${text.slice(0, width - 1)}…`;
    this.terminal.write(`${CLEAR}${text}`);
    this.shown = true;
    this.lastDraw = Date.now();
  }

  private clear(): void {
    if (!this.shown) return;
    this.terminal.write(CLEAR);
    this.shown = false;
  }
}
