import type { RunSummary } from './run.js';

/** What the reporters summarise: the run, plus the commands a resumed run skipped. */
export interface ReportSummary extends RunSummary {
  /** Commands not submitted because the job log says an earlier run finished them, in input order. */
  skipped: string[];
  /** Why, for the human summary: "already finished in ci.joblog (--resume)". */
  skipReason: string;
}
