import { TestcloudError } from './errors.js';

/** The one line a CLI prints for an error: its message, and with --verbose its stack and cause. */
export function formatError(error: unknown, verbose = false): string {
  if (verbose && error instanceof Error) {
    let text = error.stack ?? String(error);
    if (error.cause !== undefined) text += `\ncaused by: ${formatError(error.cause, true)}`;
    return text;
  }
  if (error instanceof TestcloudError) return error.message;
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}
