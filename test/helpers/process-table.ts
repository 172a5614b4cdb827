import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessEntry {
  pid: number;
  cmdline: string;
}

/**
 * Live processes whose command line or environment contains `marker`. Commands under test put a
 * unique marker in both (`TC_MARK=<marker> sh -c 'sleep 100 & sleep 100'`): the shell's command
 * line names it, and every process it starts inherits the variable, so nothing a command started
 * can hide. Zombies have neither and are not listed.
 */
export function processesWith(marker: string): ProcessEntry[] {
  const found: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'latin1');
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (cmdline.includes(marker) || environ.includes(marker)) found.push({ pid: Number(name), cmdline: cmdline.replaceAll('\0', ' ').trim() });
    } catch {
      // exited while we looked, or not ours to read
    }
  }
  return found;
}

/**
 * Resolves once no process carries `marker`, checking every 50 ms (the kernel tells nobody when
 * a process it does not parent exits); fails listing the survivors after `timeout` ms.
 */
export async function waitForNoProcessWith(marker: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const left = processesWith(marker);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`after ${timeout} ms, processes of marker ${marker} are still running:\n${left.map((p) => `${p.pid} ${p.cmdline}`).join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves once at least `count` live processes carry `marker` (polled: nobody signals a fork). */
export async function waitForProcessesWith(marker: string, count = 1, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (processesWith(marker).length < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} processes of marker ${marker} after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
