import { describe, expect, it } from 'vitest';
import { lines } from '../helpers/ci.js';
import { ROOT, runClient, spawnProcess } from '../helpers/processes.js';

const COMMANDS = ['echo one', 'sleep 0.3; echo two', 'echo three', 'sleep 1.2; echo four'];
const STATUS = /\[\d+\/[\d?]+\] \d+ running · \d+ failed · \d+:\d\d elapsed · ETA (\d+:\d\d|\?)/;
const CLEAR = '\r\x1b[K';

/** testclient under a pseudo-terminal: `script` gives it a TTY for stdin, stdout and stderr. */
async function underTerminal(args: string): Promise<string> {
  const input = lines(COMMANDS).replace(/'/g, "'\\''");
  const command = `printf '%s' '${input}' | node bin/testclient.js ${args}`;
  const proc = spawnProcess('script', 'script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: ROOT });
  const exit = await proc.waitForExit(30_000);
  expect(exit.code, proc.describe()).toBe(0);
  return proc.stdout;
}

describe('the progress line', () => {
  it('is drawn on a terminal, and wiped before every result so the results read as without it', async () => {
    const screen = await underTerminal('--local 2');
    expect(screen).toMatch(STATUS);
    expect(screen).toContain(CLEAR);
    expect(screen).toMatch(/\[4\/4\]|\[3\/4\] 1 running/);
    // Take away each drawn status line (it always ends where the next wipe starts): what is left
    // is the output a pipe gets, line for line.
    const text = screen.replace(/\r\x1b\[K(\[[^\r\n]*)?/g, '').replace(/\r\n/g, '\n');
    expect(text).not.toMatch(/running ·/);
    for (const cmd of COMMANDS) expect(text).toMatch(new RegExp(`^OK! ${cmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ⌚`, 'm'));
    expect(text).toMatch(/^All commands successfully executed ☃\nRan 4 commands in .*, result hash is [0-9a-f]{40}\n$/m);
  });

  it('is not drawn with --no-progress, even on a terminal', async () => {
    const screen = await underTerminal('--local 2 --no-progress');
    expect(screen).not.toMatch(STATUS);
    expect(screen).not.toContain('\x1b[K');
    expect(screen).toContain('All commands successfully executed');
  });

  it('is not drawn when the output is piped', async () => {
    const run = await runClient(['--local', '2'], lines(COMMANDS));
    expect(run.code, run.proc.describe()).toBe(0);
    for (const output of [run.stdout, run.stderr]) {
      expect(output).not.toMatch(STATUS);
      expect(output).not.toContain('\x1b[K');
    }
  });
});
