import { assertNever } from '@testcloud/protocol';
import type { Executor } from './executor.js';

/**
 * What `--executor` chooses: `fast` starts jobs from one persistent Python process (the
 * default; without python3 >= 3.8 it is `launcher`, without bash `execa`), `launcher` forks them
 * from a persistent bash per slot, `execa` spawns each job from Node through execa, `noop` runs
 * nothing (benchmarks only).
 */
export const EXECUTOR_KINDS = ['fast', 'launcher', 'execa', 'noop'] as const;
export type ExecutorKind = (typeof EXECUTOR_KINDS)[number];

/** Builds an executor, importing only the module it needs (execa alone costs ~100 ms of start-up). */
export async function createExecutor(kind: ExecutorKind, options: { slots?: number; onFallback?(reason: string): void } = {}): Promise<Executor> {
  switch (kind) {
    case 'fast': {
      const { SpawnerExecutor } = await import('./spawner-executor.js');
      return new SpawnerExecutor(options);
    }
    case 'launcher': {
      const { LauncherExecutor } = await import('./launcher-executor.js');
      return new LauncherExecutor(options);
    }
    case 'execa': {
      const { ExecaExecutor } = await import('./execa-executor.js');
      return new ExecaExecutor();
    }
    case 'noop': {
      const { NoopExecutor } = await import('./noop-executor.js');
      return new NoopExecutor();
    }
    default:
      return assertNever(kind);
  }
}
