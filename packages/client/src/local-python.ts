import { prestartDefaultSpawner } from '@testcloud/worker/spawner-executor';

/**
 * Whether these arguments will run `--local` with the fast executor: a guess from the raw
 * arguments, before yargs, so it must be harmless when wrong (an unused Python exits with us).
 */
export function runsLocalPython(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  if (args.some((arg) => arg === '--help' || arg === '-h' || arg === '--version')) return false;
  if (env.TESTCLIENT_LOCAL === undefined && !args.some((arg) => arg === '--local' || arg.startsWith('--local='))) return false;
  // The last one, as yargs takes the last of a repeated flag.
  let executor = -1;
  args.forEach((arg, at) => {
    if (arg === '--executor' || arg.startsWith('--executor=')) executor = at;
  });
  if (executor === -1) return (env.TESTCLIENT_EXECUTOR ?? 'fast') === 'fast';
  return args[executor] === '--executor=fast' || args[executor + 1] === 'fast';
}

/**
 * Starts the worker's Python for `--local` before the options are parsed, when the arguments
 * call for it, so that it boots on the other core while yargs loads and parses (the worker
 * adopts it); its ~15 ms start is what the first jobs would otherwise wait for.
 */
export function prestartLocalPython(args: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): void {
  if (runsLocalPython(args, env)) prestartDefaultSpawner();
}
