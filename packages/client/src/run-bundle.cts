import { statSync } from 'node:fs';
import { join } from 'node:path';

/** testclient's run path bundled by `npm run build` (scripts/bundle.mjs), beside this module. */
export const RUN_BUNDLE = join(__dirname, 'cli-run.bundle.cjs');

/** Whether require() loads ES modules here (Node 20.19 and later): the bundle requires execa. */
export function requireLoadsEsModules(): boolean {
  return (process.features as { require_module?: boolean }).require_module === true;
}

/**
 * Whether testclient runs from the bundle here: Node can run it, and it is newer than every
 * package's last compile, so that `tsc -b` alone never leaves a stale bundle running.
 */
export function runBundleIsCurrent(): boolean {
  if (!requireLoadsEsModules()) return false;
  try {
    const built = statSync(RUN_BUNDLE).mtimeMs;
    return ['protocol', 'broker', 'worker', 'client'].every((name) => statSync(join(__dirname, `../../${name}/dist/.tsbuildinfo`)).mtimeMs < built);
  } catch {
    return false; // not built, or a package never compiled
  }
}
