import type { ChalkInstance } from 'chalk';
import type { JobResult } from '@testcloud/protocol';
import { CoalescedOutput } from './coalesced-output.js';
import { CommandPlan } from './command-plan.js';
import { ClientError } from './errors.js';
import { HumanReporter, type Output } from './human-reporter.js';
import { JobLog, ResumeFilter, readJobLog } from './job-log.js';
import { JsonReporter } from './json-reporter.js';
import { JUnitReport, type UnfinishedCase } from './junit-report.js';
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
  private readonly coalesced: CoalescedOutput | undefined;
  private junit: JUnitReport | undefined;
  /** The commands a worker has taken (QUEUED) and not answered: since when (Unix ms), and which. */
  private readonly held = new Map<number, { at: number; worker: string | undefined }>();
  private readonly begun = new Date();
  private readonly skipReason: string;
  /** Finished or interrupted: the reports are written and later events are ignored. */
  private ended = false;
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
    // The status line redraws after each write, so it needs them as they come.
    this.coalesced = this.progress ? undefined : new CoalescedOutput(options.stdout);
    const out = this.progress ? this.progress.guard(options.stdout) : this.coalesced!;
    const err = this.progress ? this.progress.guard(options.stderr) : this.coalesced!.beside(options.stderr);
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
    if (options.junitFile !== undefined) {
      try {
        this.junit = new JUnitReport(options.junitFile, { startedAt: this.begun });
      } catch (error) {
        this.jobLog?.close();
        throw new ClientError('TESTCLOUD_CLIENT_BAD_OPTION', `cannot write the JUnit report ${options.junitFile}: ${(error as Error).message}`, { cause: error });
      }
    }
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
      started: (id, worker) => {
        if (this.ended) return;
        this.held.set(id, { at: Date.now(), worker });
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
    this.ended = true;
    this.ordered?.flush();
    this.progress?.stop();
    const summary: ReportSummary = { ...run, skipped: this.plan.skipped, skipReason: this.skipReason };
    const halted = `not run: ${summary.halted ?? 'the run halted'}`;
    this.junit?.write(run.elapsed, [...summary.notRun.map((cmd) => skippedCase(cmd, halted)), ...this.resumeSkipped()]);
    this.reporter.summary(summary);
    this.coalesced?.flush();
    return summary;
  }

  /**
   * The run is interrupted (by `signal`): prints what --keep-order holds, writes the JUnit report
   * with the commands that have no result marked, saves the timings and closes the job log, all
   * as of now; results that arrive later are ignored. Never throws (it runs in a signal handler).
   */
  interrupt(signal: string): void {
    if (this.ended) return;
    this.ended = true;
    this.ordered?.flush();
    this.progress?.stop();
    if (this.junit) {
      const now = Date.now();
      const unfinished = this.plan.unanswered().map(({ id, cmd }) => this.unfinishedCase(id, cmd, signal, now));
      try {
        this.junit.write(now - this.begun.getTime(), [...unfinished, ...this.resumeSkipped()]);
      } catch (error) {
        this.reporter.warning(`cannot write the JUnit report ${this.junit.file}: ${(error as Error).message}`);
      }
    }
    this.close();
  }

  /** Wipes the status line, saves the timings and closes the reports, however the run ended (once). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.coalesced?.flush();
    this.progress?.stop();
    this.junit?.close();
    try {
      this.jobLog?.close();
    } catch (error) {
      this.reporter.warning(`cannot close the job log ${this.options.joblogFile}: ${(error as Error).message}`);
    }
    if (this.timings && this.options.timingsFile !== undefined) {
      try {
        this.timings.save(this.options.timingsFile);
      } catch (error) {
        this.reporter.warning(`cannot save the timings to ${this.options.timingsFile}: ${(error as Error).message}`);
      }
    }
  }

  private onResult(result: JobResult): void {
    if (this.ended) return;
    const end = Date.now();
    this.jobLog?.record(this.plan.seqOf(result.id), result, this.held.get(result.id)?.at ?? end - result.duration);
    this.held.delete(result.id);
    this.timings?.record(result);
    this.addToJUnit(result);
    this.state.end(result.id, result.duration, isFailure(result));
    this.plan.forget(result.id);
    if (this.ordered) this.ordered.add(result);
    else this.reporter.result(result);
    this.progress?.update();
  }

  /** A result into the JUnit report; if it cannot be written (a full disk), the report is given up, not the run. */
  private addToJUnit(result: JobResult): void {
    if (!this.junit) return;
    try {
      this.junit.add(result);
    } catch (error) {
      this.junit.close();
      this.junit = undefined;
      this.reporter.warning(`cannot write the JUnit report ${this.options.junitFile} (${(error as Error).message}); going on without it`);
    }
  }

  /**
   * A command without a result when the run was interrupted. One a worker had may be the one that
   * hangs: an <error>, which GitLab and Jenkins list with the failed tests; one that no worker took
   * is <skipped>, so a long queue does not show as hundreds of errors.
   */
  private unfinishedCase(id: number, cmd: string, signal: string, now: number): UnfinishedCase {
    const held = this.held.get(id);
    if (held === undefined) return skippedCase(cmd, `not run: interrupted by ${signal} before a worker took it`);
    const ms = Math.max(now - held.at, 0);
    const where = held.worker !== undefined ? `worker ${held.worker}` : 'a worker';
    return {
      cmd,
      kind: 'interrupted',
      message: 'interrupted before it finished',
      ms,
      detail: `testclient received ${signal} when the command had been on ${where} for ${(ms / 1000).toFixed(1)} s; it was cancelled there, so it has no exit status or output`,
    };
  }

  /** The commands --resume or --resume-failed skipped. */
  private resumeSkipped(): UnfinishedCase[] {
    return this.plan.skipped.map((cmd) => skippedCase(cmd, `not run: ${this.skipReason}`));
  }
}

function skippedCase(cmd: string, message: string): UnfinishedCase {
  return { cmd, kind: 'skipped', message };
}
