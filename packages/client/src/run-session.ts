import type { ChalkInstance } from 'chalk';
import type { JobResult } from '@testcloud/protocol';
import { CommandPlan } from './command-plan.js';
import { HumanReporter, type Output } from './human-reporter.js';
import { JobLog, ResumeFilter, readJobLog } from './job-log.js';
import { JsonReporter } from './json-reporter.js';
import { writeJUnit } from './junit-report.js';
import { OrderedOutput } from './ordered-output.js';
import { isFailure } from './outcome.js';
import { ProgressLine, type Terminal } from './progress-line.js';
import { ProgressState } from './progress-state.js';
import type { ReportSummary } from './report-summary.js';
import type { PlannedCommand, RunObserver, RunSummary } from './run.js';
import { Timings } from './timings-file.js';

export interface SessionOptions {
  stdout: Output;
  stderr: Terminal;
  color: ChalkInstance;
  /** NDJSON instead of the human format (--json). */
  json?: boolean;
  quiet?: boolean;
  tag?: boolean;
  stderrMode?: 'on-failure' | 'always' | 'never';
  keepOrder?: boolean;
  /** Draw the status line on `stderr` (the caller checks that it is a terminal). */
  progress?: boolean;
  timingsFile?: string;
  junitFile?: string;
  joblogFile?: string;
  /** With joblogFile: skip what it says finished, or only what passed. */
  resume?: 'finished' | 'passed';
}

/**
 * Everything one testclient run does around runCommands(): reads and orders the commands
 * (resume, timings), and fans each event out to the job log, the timings history, the JUnit
 * report, the status line and the reporter (through --keep-order's buffer).
 */
export class RunSession {
  readonly plan: CommandPlan;
  readonly observer: RunObserver;
  private readonly reporter: HumanReporter | JsonReporter;
  private readonly timings: Timings | undefined;
  private readonly jobLog: JobLog | undefined;
  private readonly progress: ProgressLine | undefined;
  private readonly state: ProgressState;
  private readonly ordered: OrderedOutput | undefined;
  private readonly results: JobResult[] = [];
  private readonly startedAt = new Map<number, number>();
  private readonly begun = new Date();
  private readonly skipReason: string;
  private closed = false;

  constructor(
    input: AsyncIterable<string[]>,
    private readonly options: SessionOptions,
  ) {
    this.state = new ProgressState((id) => {
      const cmd = this.plan.cmdOf(id);
      return cmd === undefined ? undefined : this.timings?.estimate(cmd);
    });
    this.progress = options.progress ? new ProgressLine(options.stderr, this.state) : undefined;
    const out = this.progress ? this.progress.guard(options.stdout) : options.stdout;
    const err = this.progress ? this.progress.guard(options.stderr) : options.stderr;
    this.reporter = options.json
      ? new JsonReporter(out, err, { quiet: options.quiet ?? false })
      : new HumanReporter(out, options.color, err, { quiet: options.quiet ?? false, tag: options.tag ?? false, stderr: options.stderrMode ?? 'on-failure' });
    this.ordered = options.keepOrder ? new OrderedOutput((result) => this.reporter.result(result)) : undefined;
    const warn = (message: string) => this.reporter.warning(message);

    this.timings = options.timingsFile !== undefined ? Timings.load(options.timingsFile, warn) : undefined;
    let resume: ResumeFilter | undefined;
    if (options.joblogFile !== undefined && options.resume !== undefined) {
      resume = new ResumeFilter(readJobLog(options.joblogFile), options.resume === 'passed');
    }
    this.skipReason =
      options.resume === 'passed' ? `already passed in ${options.joblogFile} (--resume-failed)` : `already finished in ${options.joblogFile} (--resume)`;
    this.jobLog = options.joblogFile !== undefined ? new JobLog(options.joblogFile, options.resume !== undefined) : undefined;
    const timings = this.timings;
    const estimate = timings ? (cmd: string) => timings.estimate(cmd) : undefined;

    this.plan = new CommandPlan(input, {
      ...(resume ? { resume } : {}),
      ...(estimate ? { estimate } : {}),
      onPlanned: (command: PlannedCommand) => this.state.planned(command.id),
    });
    this.observer = {
      connected: (endpoint) => {
        if (this.reporter instanceof HumanReporter) this.reporter.connected(endpoint);
      },
      counted: (total) => {
        this.state.counted(total);
        if (this.reporter instanceof HumanReporter) this.reporter.counted(total);
        this.progress?.update();
      },
      started: (id) => {
        this.startedAt.set(id, Date.now());
        this.state.begin(id);
        this.progress?.update();
      },
      result: (result) => this.onResult(result),
      warning: warn,
    };
  }

  /** The commands to submit, in the order to submit them. */
  commands(): AsyncIterable<PlannedCommand[]> {
    return this.plan.batches();
  }

  /** Prints what --keep-order still holds and the summary, and writes the JUnit report. */
  finish(run: RunSummary): ReportSummary {
    this.ordered?.flush();
    this.progress?.stop();
    const summary: ReportSummary = { ...run, skipped: this.plan.skipped, skipReason: this.skipReason };
    if (this.options.junitFile !== undefined) writeJUnit(this.options.junitFile, this.results, summary, { startedAt: this.begun });
    this.reporter.summary(summary);
    return summary;
  }

  /** Wipes the status line, saves the timings and closes the job log, however the run ended (once). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.progress?.stop();
    this.jobLog?.close();
    if (this.timings && this.options.timingsFile !== undefined) {
      try {
        this.timings.save(this.options.timingsFile);
      } catch (error) {
        this.reporter.warning(`cannot save the timings to ${this.options.timingsFile}: ${(error as Error).message}`);
      }
    }
  }

  private onResult(result: JobResult): void {
    const end = Date.now();
    this.jobLog?.record(this.plan.seqOf(result.id), result, this.startedAt.get(result.id) ?? end - result.duration);
    this.startedAt.delete(result.id);
    this.timings?.record(result);
    if (this.options.junitFile !== undefined) this.results.push(result);
    this.state.end(result.id, result.duration, isFailure(result));
    this.plan.forget(result.id);
    if (this.ordered) this.ordered.add(result);
    else this.reporter.result(result);
    this.progress?.update();
  }
}
