import type { ChildProcess } from 'node:child_process';

/**
 * What the spawner (python3) and the launcher (bash) both do with the helper process they
 * drive: keep the tail of its stderr, ignore its stdin breaking when it dies, and say once how
 * it ended, with the last line it wrote to stderr (its own explanation, if any).
 * Resolves once the helper has exited or could not be started.
 */
export function watchHelper(
  child: ChildProcess,
  describe: { startFailed(error: Error): string; ended(code: number | null, signal: NodeJS.Signals | null): string },
  onExit: (failure: Error) => void,
): Promise<void> {
  let diagnostics = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (diagnostics = (diagnostics + text).slice(-2000)));
  child.stdin!.on('error', () => {});
  const failure = (reason: string) => new Error(`${reason}${diagnostics ? `: ${diagnostics.trim().split('\n').pop()}` : ''}`);
  return new Promise((resolve) => {
    child.on('error', (error) => {
      onExit(failure(describe.startFailed(error)));
      resolve();
    });
    child.on('close', (code, signal) => {
      onExit(failure(describe.ended(code, signal)));
      resolve();
    });
  });
}
