/** Figure 6: `testclient --help` and `--version` against `node -e 0`, interleaved. */
import { interleave, timeShell } from '../lib/measure.js';
import { BIN, sq } from '../lib/paths.js';

export async function startup({ runs }) {
  const node = sq(process.execPath);
  return interleave(
    {
      'node -e 0': () => timeShell(`${node} -e 0`),
      'testclient --help': () => timeShell(`${node} ${sq(BIN('testclient'))} --help > /dev/null`),
      'testclient --version': () => timeShell(`${node} ${sq(BIN('testclient'))} --version > /dev/null`),
    },
    runs,
  );
}
