/**
 * The order in which `--timings` submits commands: longest processing time first (LPT), the
 * classic list-scheduling rule whose makespan is within 4/3 of the optimum on identical slots.
 *
 * The rule, in full: commands with no recorded duration come first, in input order (they may
 * be the longest of all, and they run early enough that a slow one cannot form the tail); then
 * the others by their recorded duration, longest first; equal durations keep input order.
 */
export function lptOrder<T extends { cmd: string }>(commands: readonly T[], estimate: (cmd: string) => number | undefined): T[] {
  const keyed = commands.map((command, index) => ({ command, index, ms: estimate(command.cmd) }));
  keyed.sort((a, b) => {
    if (a.ms === undefined || b.ms === undefined) {
      if (a.ms === undefined && b.ms === undefined) return a.index - b.index;
      return a.ms === undefined ? -1 : 1;
    }
    return b.ms - a.ms || a.index - b.index;
  });
  return keyed.map((entry) => entry.command);
}
