import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Executor } from './executor.js';

/**
 * The directory a job runs in: its `cwd` taken relative to the worker's own --cwd. A job may
 * not leave that directory, by an absolute path, by `..`, or through a symbolic link that
 * points elsewhere; it gets an error result instead (returned here as `{ error }`).
 */
export function jobDirectory(base: string, cwd: string | undefined): { dir: string; error?: undefined } | { dir?: undefined; error: string } {
  if (cwd === undefined || cwd === '' || cwd === '.') return { dir: base };
  const refuse = (why: string) => ({ error: `job directory ${JSON.stringify(cwd)} ${why}` });
  if (cwd.includes('\0')) return refuse('is not a valid path');
  if (isAbsolute(cwd)) return refuse(`is absolute: it must be relative to the worker's --cwd ${base}`);
  const root = realpathOrSelf(resolve(base));
  const wanted = resolve(root, cwd);
  if (!inside(root, wanted)) return refuse(`leads outside the worker's --cwd ${base}`);
  let real: string;
  try {
    real = realpathSync(wanted);
  } catch {
    return refuse(`does not exist under the worker's --cwd ${base}`);
  }
  if (!inside(root, real)) return refuse(`leads outside the worker's --cwd ${base} (through a symbolic link)`);
  if (!statSync(real).isDirectory()) return refuse(`is not a directory under the worker's --cwd ${base}`);
  return { dir: real };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** An executor for a job refused before it starts: its result carries `message` as the error. */
export function refusingExecutor(message: string): Executor {
  return { run: () => Promise.reject(new Error(message)) };
}
