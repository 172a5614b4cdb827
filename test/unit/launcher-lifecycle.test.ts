import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LauncherExecutor } from '../../packages/worker/dist/index.js';
import { processesWith, waitForNoProcessWith } from '../helpers/process-table.js';
import { ROOT, spawnProcess } from '../helpers/processes.js';

/** bash launchers this test process started (its children), with the directory each was given. */
function ourLaunchers(): Array<{ pid: number; dir: string }> {
  const found: Array<{ pid: number; dir: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const args = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0');
      if (ppid === process.pid && args.includes('testcloud-launcher')) found.push({ pid: Number(name), dir: args[args.indexOf('testcloud-launcher') + 1]! });
    } catch {
      // gone
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** The directories of the launchers that carry `marker` in their environment. */
function launcherDirs(marker: string): string[] {
  return processesWith(marker)
    .map((entry) => entry.cmdline.split(' '))
    .filter((args) => args.includes('testcloud-launcher'))
    .map((args) => args[args.indexOf('testcloud-launcher') + 1]!);
}

/** A Node process that loads the executor, prestarts two launchers and then runs `rest`. */
function executorProcess(marker: string, rest: string) {
  const script = [
    `import { LauncherExecutor } from ${JSON.stringify(`${ROOT}/packages/worker/dist/index.js`)};`,
    'const run = new LauncherExecutor({ slots: 2 });',
    'run.prestart(process.cwd());',
    rest,
  ].join('\n');
  return spawnProcess('executor', process.execPath, ['--input-type=module', '-e', script], { env: { TC_MARK: marker }, keepStdin: true });
}

describe('LauncherExecutor: starting and ending its launchers', () => {
  it('prestart starts one launcher per slot before any job; jobs run on them; close() ends them and removes their directories', async () => {
    const run = new LauncherExecutor({ slots: 2 });
    onTestFinished(() => run.close());
    run.prestart(process.cwd());
    const launchers = ourLaunchers();
    expect(launchers).toHaveLength(2);
    const outcomes = await Promise.all([run.run({ cmd: 'echo one', cwd: process.cwd(), maxOutput: 1024 }), run.run({ cmd: 'echo two', cwd: process.cwd(), maxOutput: 1024 })]);
    expect(outcomes.map((outcome) => [outcome.exitcode, outcome.stdout.toString()])).toEqual([
      [0, 'one\n'],
      [0, 'two\n'],
    ]);
    expect(ourLaunchers()).toEqual(launchers);
    await run.close();
    expect(ourLaunchers()).toEqual([]);
    for (const { dir } of launchers) expect(existsSync(dir), dir).toBe(false);
  });

  it('does not keep a process that prestarted them alive; they end with it and remove their directories', async () => {
    const marker = `tc-prestart-${randomBytes(6).toString('hex')}`;
    const proc = executorProcess(
      marker,
      [
        "await Promise.all([run.run({ cmd: 'true', cwd: '.', maxOutput: 1 }), run.run({ cmd: 'true', cwd: '.', maxOutput: 1 })]);",
        "console.log('idle');",
        // Held by stdin until the test has seen the launchers; then only they are left.
        "process.stdin.once('data', () => process.stdin.destroy());",
      ].join('\n'),
    );
    await proc.waitForLine(/idle/);
    const dirs = launcherDirs(marker);
    expect(dirs).toHaveLength(2);
    proc.child.stdin!.write('go\n');
    expect((await proc.waitForExit()).code, proc.describe()).toBe(0);
    await waitForNoProcessWith(marker);
    for (const dir of dirs) expect(existsSync(dir), dir).toBe(false);
  });

  it('removes the directories of launchers whose worker was killed with SIGKILL', async () => {
    const marker = `tc-orphan-${randomBytes(6).toString('hex')}`;
    const proc = executorProcess(
      marker,
      [
        "await Promise.all([run.run({ cmd: 'true', cwd: '.', maxOutput: 1 }), run.run({ cmd: 'true', cwd: '.', maxOutput: 1 })]);",
        "console.log('ready');",
        "process.stdin.once('data', () => process.kill(process.pid, 'SIGKILL'));",
      ].join('\n'),
    );
    await proc.waitForLine(/ready/);
    const dirs = launcherDirs(marker);
    expect(dirs).toHaveLength(2);
    proc.child.stdin!.write('die\n');
    expect((await proc.waitForExit()).signal).toBe('SIGKILL');
    await waitForNoProcessWith(marker);
    for (const dir of dirs) expect(existsSync(dir), dir).toBe(false);
  });
});
