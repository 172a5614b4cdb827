import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Kills the process groups of a worker's running commands when the worker itself dies, however
 * it dies (SIGKILL, a crash, the OOM killer): a small bash outside the worker's process group
 * keeps the set of live groups, fed through a pipe, and kills what is left when the pipe closes.
 * Without it the commands of a dead worker would run on, orphaned, while the broker reruns them.
 */
const REAPER_SCRIPT = `
trap '' INT TERM HUP
declare -A live
while IFS= read -r line; do
  case $line in
    +*) live[\${line#+}]=1 ;;
    -*) unset "live[\${line#-}]" ;;
  esac
done
for pgid in "\${!live[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null; done
`;

export class GroupReaper {
  private child: ChildProcess | undefined;
  private failed = false;
  /**
   * Releases not yet written, sent once per turn of the event loop. A new group is written at
   * once: the worker may die in the very turn it started a job.
   */
  private readonly released = new Set<number>();
  private flushScheduled = false;

  constructor(private readonly onUnavailable: (reason: string) => void = () => {}) {}

  /** A command's process group exists from now on (its leader's pid is the group id). */
  track(pgid: number): void {
    this.flush(); // a release of a recycled pgid must not follow its new track
    this.start()?.stdin?.write(`+${pgid}\n`);
  }

  /** The group's leader has been reaped; the group is ours to forget. */
  release(pgid: number): void {
    this.released.add(pgid);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Closes the pipe: the reaper kills any group still listed, then exits. */
  close(): void {
    this.flush();
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.released.size === 0) return;
    let lines = '';
    for (const pgid of this.released) lines += `-${pgid}\n`;
    this.released.clear();
    this.start()?.stdin?.write(lines);
  }

  private start(): ChildProcess | undefined {
    if (this.child || this.failed) return this.child;
    const child = spawn('bash', ['-c', REAPER_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    child.on('error', (error) => {
      this.failed = true;
      this.child = undefined;
      this.onUnavailable(`cannot start the process-group reaper (bash): ${error.message}; a worker killed with SIGKILL will leave its commands running`);
    });
    child.stdin!.on('error', () => {}); // it exits once it has done its work
    // Neither the reaper nor its pipe may keep the worker's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    this.child = child;
    return child;
  }
}
