/**
 * Figures 1 and 2: the same commands through `testclient --local 2`, `xargs -P 2 sh -c` and
 * GNU `parallel -j 2`, read from one file, output thrown away, timed from start to exit.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installed, interleave } from '../lib/measure.js';
import { BIN, sq } from '../lib/paths.js';
import { timeShell } from '../lib/measure.js';

export async function endToEnd({ label, command, count, runs, dir, withExeca = false }) {
  const input = join(dir, `${label.replace(/\W+/g, '-')}.txt`);
  writeFileSync(input, `${command}\n`.repeat(count));
  const contenders = {
    testclient: () => timeShell(`${sq(process.execPath)} ${sq(BIN('testclient'))} --local 2 < ${sq(input)} > /dev/null`),
    xargs: () => timeShell(`xargs -d '\\n' -n 1 -P 2 sh -c < ${sq(input)}`),
  };
  const parallel = installed('parallel');
  if (parallel) contenders.parallel = () => timeShell(`parallel -j 2 --will-cite < ${sq(input)} > /dev/null`);
  if (withExeca) {
    contenders['testclient --executor execa'] = () =>
      timeShell(`${sq(process.execPath)} ${sq(BIN('testclient'))} --local 2 --executor execa < ${sq(input)} > /dev/null`);
  }
  const times = await interleave(contenders, runs);
  return { label, count, command, times, parallelMissing: !parallel };
}
