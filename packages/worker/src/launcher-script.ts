import { constants } from 'node:os';

/**
 * The persistent launcher behind the `fast` executor: one long-lived bash per worker slot that
 * forks each job as `sh -c CMD`, so Node pays one `spawn` per slot instead of one per job.
 *
 * Node -> bash (stdin), one line per job, each argument shell-quoted by `shellQuote`, then quit:
 *
 *   run SEQ PAIR CWD CMD MODE OP...
 *                                SEQ numbers the job (for its P record). PAIR: which FIFO pair (0 or
 *                                1) takes the job's output. CWD: ''
 *                                for the launcher's own directory (no cd). MODE x: OPs are
 *                                NAME=VALUE (export) or NAME (unset), done by bash itself;
 *                                MODE e: the same OPs go to env(1), for names bash cannot export
 *                                (not identifiers, or bash's own variables).
 *   quit                         the last line when Node retires the launcher: bash exits once
 *                                the jobs before it have ended, and leaves its directory to Node
 *                                (end-of-file without it, as when the worker dies: bash removes it)
 *
 * bash -> Node, on stdout: the events Node must act on at once, one per line, in job order:
 *
 *   R                  ready: the launcher's FIFOs exist (once, at start)
 *   E cwd              the current job could not start: cannot change to CWD; S follows
 *   E launcher         the job line did not parse (a bug); S follows
 *   S STATUS           the current job has ended and been reaped, with `wait`'s status
 *
 * and on the side channel (FIFO p, fd 3), which Node reads only when it needs to (a status above
 * 128, a job to stop, a long job's pid, or a backlog), so that a job costs Node one wake-up:
 *
 *   P SEQ PID          job SEQ runs as PID, leader of its own process group
 *   [N]+  WORD ...     bash's own notice of how the job went, which `wait` prints to its
 *                      stderr: WORD is Done or Exit when the job exited, Stopped when it was
 *                      stopped, else the signal that ended it (`wait` folds exits and signals
 *                      into 128+N). It may also read `bash: line N: PID WORD ...`. Each notice
 *                      is about the job of the last P before it: bash runs one job at a time.
 *
 * No CHLD trap: bash 5.2 corrupts its heap now and then when one runs `jobs` as a job stops and
 * dies in quick succession (~1 launcher in 2000 such jobs aborted with a malloc error).
 *
 * The job's stdout and stderr are FIFOs in the launcher's private directory (oK and eK), which
 * Node opens for reading before it sends the job, so each job has streams of its own; two pairs
 * let Node queue the next job while one runs. `set -m` gives each job its own process group
 * (bash needs no terminal for that; dash does).
 */
export const LAUNCHER_SCRIPT = `
d=$1
stops='${stoppedStatuses()}'
job() {
  k=$2
  if [ -n "$3" ]; then cd -P -- "$3" 2>/dev/null || { printf 'E cwd\\n'; exit 127; }; fi
  c=$4 m=$5
  shift 5
  if [ "$m" = e ]; then exec env "$@" sh -c "$c" </dev/null >"$d/o$k" 2>"$d/e$k" 3>&-; fi
  for o; do case $o in *=*) export "$o" ;; *) unset -v "$o" ;; esac; done
  exec sh -c "$c" </dev/null >"$d/o$k" 2>"$d/e$k" 3>&-
}
run() {
  ( job "$@" ) &
  p=$!
  printf 'P %s %s\\n' "$1" "$p" >&3
  wait "$p" 2>&3
  s=$?
  # With job control, wait also returns when the job is stopped (SIGSTOP: the memory guard);
  # no signal can end a process with those statuses, so it is stopped or was just continued.
  # Ask wait again until it says how the job ended (if the job died meanwhile, bash has reaped
  # it and kept its status). bash prints its notice of a job that ends during the sleep as the
  # sleep returns: that goes to fd 3 too. The dot (ignored by Node) makes bash die of SIGPIPE if
  # the worker has gone meanwhile; the stopped job, its group orphaned, then gets SIGHUP and
  # SIGCONT from the kernel.
  while case " $stops " in *" $s "*) true ;; *) false ;; esac; do
    printf '.\\n'
    { sleep 0.05; } 2>&3
    wait "$p" 2>&3
    s=$?
  done
  printf 'S %s\\n' "$s"
}
set -m
# A job's subshell inherits this trap and runs it if a signal ends it before its exec: only the
# launcher itself (BASHPID = $$) removes the directory. It is for a launcher whose worker died:
# one that Node retires is told to quit and leaves the directory to Node, sparing its exit the
# fork and exec of rm.
trap '[ "$BASHPID" = "$$" ] && rm -rf -- "$d"' EXIT
quit() { trap - EXIT; exit 0; }
mkfifo -m 600 -- "$d/o0" "$d/e0" "$d/o1" "$d/e1" "$d/p" || exit 3
exec 3<>"$d/p"
printf 'R\\n'
while IFS= read -r line; do eval "$line" || printf 'E launcher\\nS 127\\n'; done
`;

/**
 * The statuses `wait` returns for a job that was stopped (128 + SIGSTOP, SIGTSTP, SIGTTIN,
 * SIGTTOU), given to bash as numbers so that it needs no `$(kill -l …)` subshells to start.
 */
function stoppedStatuses(): string {
  const { SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU } = constants.signals;
  return [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].map((signal) => signal + 128).join(' ');
}

/** A string as one bash word, newlines included (`read -r` sees one line per job). */
export function shellQuote(text: string): string {
  // Replacement functions, not strings: in a replacement string "$'" means "the rest of the input".
  const quoted = text.replace(/'/g, () => `'\\''`).replace(/\n/g, () => `'$'\\n''`).replace(/\r/g, () => `'$'\\r''`);
  return `'${quoted}'`;
}

/**
 * Variables whose presence in bash's own environment would change how the launcher itself
 * behaves: start-up files, options, a timeout on `read`, translated notices (LANGUAGE applies
 * even under C.UTF-8), functions (which could shadow the launcher's). The launcher starts without them and gives them back to
 * each job.
 */
const LAUNCHER_SENSITIVE = /^(BASH_ENV|ENV|SHELLOPTS|BASHOPTS|POSIXLY_CORRECT|TMOUT|LC_ALL|LANGUAGE|BASH_FUNC_.*)$/;

/** Names bash can set with `export` without side effects on itself. */
const EXPORTABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BASH_OWN = /^(BASH.*|SHELLOPTS|EUID|PPID|UID|GROUPS|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|FUNCNAME|DIRSTACK|PIPESTATUS|EPOCHSECONDS|EPOCHREALTIME|COMP_WORDBREAKS|OPTIND|OPTARG|_)$/;

export interface LauncherEnvironment {
  /** bash's environment: the worker's, minus the sensitive variables. */
  launcher: NodeJS.ProcessEnv;
  /** What each job gets back on top of bash's environment: NAME=VALUE to set, NAME to unset. */
  restore: Map<string, string | undefined>;
}

export function launcherEnvironment(env: NodeJS.ProcessEnv = process.env): LauncherEnvironment {
  const launcher: NodeJS.ProcessEnv = {};
  const restore = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (LAUNCHER_SENSITIVE.test(name)) restore.set(name, value);
    else launcher[name] = value;
  }
  // bash adds one to SHLVL: one less going in leaves the jobs' SHLVL as the worker's, with no
  // work per job. Only an unset or odd SHLVL is put back job by job.
  const level = env.SHLVL;
  if (level !== undefined && /^[1-9][0-9]*$/.test(level)) launcher.SHLVL = String(Number(level) - 1);
  else restore.set('SHLVL', level);
  const messages = env.LC_ALL || env.LC_MESSAGES || env.LANG || 'C';
  if (/^(C|POSIX)([.@]|$)/.test(messages)) {
    // bash speaks English already; changing LC_ALL in every job would cost a setlocale() each.
    if (env.LC_ALL !== undefined) launcher.LC_ALL = env.LC_ALL;
    restore.delete('LC_ALL');
  } else {
    // "Done" and "Exit" are all the launcher reads of bash's words: keep them untranslated.
    if (!restore.has('LC_ALL')) restore.set('LC_ALL', undefined);
    launcher.LC_ALL = 'C';
  }
  return { launcher, restore };
}

/** The MODE and OP arguments of a job line (see the top of this file), already quoted. */
export function environmentArguments(restore: ReadonlyMap<string, string | undefined>, extra: Record<string, string> | undefined): string {
  if (restore.size === 0 && extra === undefined) return 'x';
  let ops = restore;
  if (extra !== undefined) {
    const merged = new Map(restore);
    for (const [name, value] of Object.entries(extra)) merged.set(name, value);
    ops = merged;
  }
  let bashCanDoIt = true;
  for (const name of ops.keys()) if (!EXPORTABLE.test(name) || BASH_OWN.test(name)) bashCanDoIt = false;
  const words: string[] = [];
  if (bashCanDoIt) {
    for (const [name, value] of ops) words.push(shellQuote(value === undefined ? name : `${name}=${value}`));
    return `x ${words.join(' ')}`;
  }
  for (const [name, value] of ops) if (value === undefined) words.push('-u', shellQuote(name));
  words.push('--');
  for (const [name, value] of ops) if (value !== undefined) words.push(shellQuote(`${name}=${value}`));
  return `e ${words.join(' ')}`;
}
