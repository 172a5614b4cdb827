/**
 * Loaded with `node --import` into a process under measurement: at exit, appends its peak
 * resident size (bytes) to the file named by TC_BENCH_PEAK_FILE.
 */
import { appendFileSync } from 'node:fs';

process.on('exit', () => {
  const file = process.env.TC_BENCH_PEAK_FILE;
  if (file) appendFileSync(file, `${process.resourceUsage().maxRSS * 1024}\n`);
});
