import type { ResumeFilter } from './job-log.js';
import { lptOrder } from './lpt-order.js';
import type { PlannedCommand } from './run.js';

export interface PlanOptions {
  /** Skips what an earlier run finished (--resume, --resume-failed). */
  resume?: ResumeFilter;
  /**
   * With recorded durations (--timings): read all of stdin first, then submit longest first,
   * each command with a priority the broker honours across the pool.
   */
  estimate?: (cmd: string) => number | undefined;
  /** Called as each command to run is read. */
  onPlanned?(command: PlannedCommand): void;
}

/** Commands submitted per batch once ordered, so --window still bounds what is in flight. */
const ORDERED_BATCH = 512;

/**
 * Turns the lines read from stdin into the commands to submit: ids 0, 1, 2… in input order over
 * the commands that run (skipped ones take none, so the result hash and --keep-order see a
 * gapless sequence), remembering each one's input position for the job log.
 */
export class CommandPlan {
  /** Commands skipped by --resume, in input order. */
  readonly skipped: string[] = [];
  /** Commands read and not yet answered, by id: what is in flight, not the whole input. */
  private readonly commands = new Map<number, string>();
  private readonly positions = new Map<number, number>();
  private nextId = 0;

  constructor(
    private readonly input: AsyncIterable<string[]>,
    private readonly options: PlanOptions = {},
  ) {}

  /** The command with this id. */
  cmdOf(id: number): string | undefined {
    return this.commands.get(id);
  }

  /** Its position among the input's commands, from 1 (the job log's Seq). */
  seqOf(id: number): number {
    return this.positions.get(id) ?? id + 1;
  }

  /** The commands read that have no result yet, in input order (what an interrupt leaves unfinished). */
  unanswered(): PlannedCommand[] {
    // Ids are given in increasing order as commands are read, and a Map keeps insertion order.
    return [...this.commands].map(([id, cmd]) => ({ id, cmd }));
  }

  /** The command has its result: nothing more is asked about it (keeps memory to what is in flight). */
  forget(id: number): void {
    this.commands.delete(id);
    this.positions.delete(id);
  }

  async *batches(): AsyncGenerator<PlannedCommand[]> {
    const ordered = this.options.estimate !== undefined;
    const all: PlannedCommand[] = [];
    let position = 0;
    for await (const lines of this.input) {
      const batch: PlannedCommand[] = [];
      for (const cmd of lines) {
        position++;
        if (this.options.resume?.skip(cmd)) {
          this.skipped.push(cmd);
          continue;
        }
        const command = { id: this.nextId++, cmd };
        this.commands.set(command.id, cmd);
        this.positions.set(command.id, position);
        this.options.onPlanned?.(command);
        batch.push(command);
      }
      if (ordered) all.push(...batch);
      else if (batch.length > 0) yield batch;
    }
    if (!ordered) return;
    const sorted = lptOrder(all, this.options.estimate!);
    // Priorities count down from the number of commands: the first submitted is the most urgent.
    const prioritised = sorted.map((command, rank) => ({ ...command, priority: sorted.length - rank }));
    for (let i = 0; i < prioritised.length; i += ORDERED_BATCH) yield prioritised.slice(i, i + ORDERED_BATCH);
  }
}
