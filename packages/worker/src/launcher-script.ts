/**
 * The persistent launcher behind the `fast` executor: one long-lived bash per worker slot that
 * forks each job as `sh -c CMD`, so Node pays one `spawn` per slot instead of one per job.
 *
 * Node -> bash (stdin), one line per job, each argument shell-quoted by `shellQuote`:
 *
 *   __tc_run CWD CMD MODE OP...     MODE x: OPs are NAME=VALUE (export) or NAME (unset) done by
 *                                   bash itself; MODE e: the same OPs go to env(1), for names
 *                                   bash cannot export (not identifiers, or bash's own).
 *
 * bash -> Node (stdout), one event per line:
 *
 *   R                  ready: the launcher's FIFOs exist (once, at start)
 *   P PID              the job runs as PID, leader of its own process group
 *   E cwd              the job could not start: cannot change to CWD
 *   E launcher         the job line did not parse (a bug): S follows
 *   [N]+ PID WORD ...  `jobs -l` from the CHLD trap: WORD is Done or Exit when the job exited,
 *                      else the signal that ended it (bash's `wait` folds both into 128+N)
 *   S STATUS           the job has ended and been reaped, with `wait`'s status
 *
 * The job's stdout and stderr are FIFOs in the launcher's private directory (`o` and `e`),
 * which Node opens for reading before it sends the job, so each job has streams of its own.
 * `set -m` gives each job its process group; job control is switched off again while waiting
 * so that a job paused with SIGSTOP (the memory guard) does not end the `wait`.
 */
export const LAUNCHER_SCRIPT = `
d=$1
__tc_job() {
  cd -P -- "$1" 2>/dev/null || { printf 'E cwd\\n'; exit 127; }
  c=$2 m=$3
  shift 3
  if [ "$m" = e ]; then exec env "$@" sh -c "$c" </dev/null >"$d/o" 2>"$d/e"; fi
  for o; do case $o in *=*) export "$o" ;; *) unset -v "$o" ;; esac; done
  exec sh -c "$c" </dev/null >"$d/o" 2>"$d/e"
}
__tc_run() {
  set -m
  ( __tc_job "$@" ) &
  p=$!
  set +m
  printf 'P %s\\n' "$p"
  wait "$p"
  printf 'S %s\\n' "$?"
}
trap 'jobs -l' CHLD
trap 'rm -rf -- "$d"' EXIT
mkfifo -m 600 -- "$d/o" "$d/e" || exit 3
printf 'R\\n'
while IFS= read -r __tc_line; do eval "$__tc_line" || printf 'E launcher\\nS 127\\n'; done
`;

/** A string as one bash word, newlines included (`read -r` sees one line per job). */
export function shellQuote(text: string): string {
  // Replacement functions, not strings: in a replacement string "$'" means "the rest of the input".
  const quoted = text.replace(/'/g, () => `'\\''`).replace(/\n/g, () => `'$'\\n''`).replace(/\r/g, () => `'$'\\r''`);
  return `'${quoted}'`;
}

/**
 * Variables whose presence in bash's own environment would change how the launcher itself
 * behaves (start-up files, options, a timeout on `read`, translated `jobs` words, functions that
 * shadow builtins). The launcher starts without them and gives them back to each job, along with
 * SHLVL, which bash increments.
 */
const LAUNCHER_SENSITIVE = /^(BASH_ENV|ENV|SHELLOPTS|BASHOPTS|POSIXLY_CORRECT|TMOUT|LC_ALL|SHLVL|BASH_FUNC_.*)$/;

/** Names bash can set with `export` without side effects on itself. */
const EXPORTABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BASH_OWN = /^(BASH.*|SHELLOPTS|EUID|PPID|UID|GROUPS|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|FUNCNAME|DIRSTACK|PIPESTATUS|EPOCHSECONDS|EPOCHREALTIME|COMP_WORDBREAKS|OPTIND|OPTARG|_)$/;

export interface LauncherEnvironment {
  /** bash's environment: the worker's, minus the sensitive variables, in the C locale. */
  launcher: NodeJS.ProcessEnv;
  /** What each job gets back: NAME=VALUE to set, NAME alone to unset. */
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
  if (!restore.has('SHLVL')) restore.set('SHLVL', undefined);
  const messages = env.LC_ALL || env.LC_MESSAGES || env.LANG || 'C';
  if (/^(C|POSIX)([.@]|$)/.test(messages)) {
    // bash speaks English already; changing LC_ALL in every job would cost a setlocale() each.
    if (env.LC_ALL !== undefined) launcher.LC_ALL = env.LC_ALL;
    restore.delete('LC_ALL');
  } else {
    if (!restore.has('LC_ALL')) restore.set('LC_ALL', undefined);
    launcher.LC_ALL = 'C';
  }
  return { launcher, restore };
}

/** The MODE and OP arguments of a job line (see the top of this file), already quoted. */
export function environmentArguments(restore: ReadonlyMap<string, string | undefined>, extra: Record<string, string> | undefined): string {
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
