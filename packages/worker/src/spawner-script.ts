/**
 * The persistent spawner behind the `fast` executor: one Python 3 process per worker that starts
 * every job with os.posix_spawn (vfork and exec: no copy of page tables, unlike bash's fork or
 * Node's spawn), runs at most SLOTS at once and starts a queued job the instant one ends, with no
 * round trip to Node in between. Run as `python3 -I -S -c SPAWNER_SCRIPT testcloud-spawner`
 * (-I -S: no site, user site or PYTHON* variables; start-up takes a third of the time). It
 * needs nothing from its command line or directory, so it can be started before the worker knows
 * its options (prestartSpawner): it learns them from its first line.
 *
 * Node -> Python (stdin), one JSON array per line (JSON escapes a command's newlines):
 *
 *   ["e", {NAME: VALUE, ...}, SLOTS, HOME] first line, once: the jobs' environment (execa gives
 *                                         jobs the worker's, and Python's own may differ: it adds
 *                                         LC_CTYPE in the C locale), the most jobs run at once
 *                                         (0: no limit) and the directory where jobs need no chdir
 *   ["r", SEQ, CMD, CWD, ENV|null, MAX]   run `sh -c CMD` in CWD ('' = where Python runs) with ENV
 *                                         on top of the environment, keeping MAX bytes per stream;
 *                                         it waits in a FIFO while SLOTS jobs run
 *   ["k", SEQ, SIGNUM]                    signal the job's process group while it may exist; a job
 *                                         still queued is dropped instead (Q)
 *   ["a", SEQ]                            stop reading the job's streams (children it left running
 *                                         hold them)
 *
 * Python -> Node (stdout), records of an ASCII header line, batched into one write per wake-up
 * (held up to HOLD while a job's streams have closed and its exit is not read yet, so that a
 * job's end costs Node one wake-up):
 *
 *   R MAJOR.MINOR          ready (once, first)
 *   S SEQ PID NS           started as PID, leader of its own process group, at NS (CLOCK_MONOTONIC)
 *   O SEQ FD LEN           LEN bytes of the job's stdout (FD 1) or stderr (2) follow, raw
 *   D SEQ FD N             N more bytes arrived beyond MAX, dropped (still activity)
 *   X SEQ CODE|- SIG|-     the job's shell has ended: exited with CODE, or killed by signal SIG
 *   C SEQ                  both streams closed (or given up on); the job is over once X and C came
 *   F SEQ REASON           it could not start (REASON `cwd`: CWD cannot be entered); nothing follows
 *   Q SEQ                  dropped from the queue by a kill before it started; nothing follows
 *
 * A job's shell is left a zombie until the job is over (X and C both sent): its exit is read with
 * waitid(WNOWAIT), and it is reaped (waitpid on its pid, never -1) only then. The zombie keeps its
 * pid, and so its process group's id, from being given to another process while the job's group
 * may still be signalled (a `k` request for a job whose shell ended while children it left hold
 * its streams); a job that is over is forgotten. So a `k` never reaches a recycled group.
 *
 * Python exits once stdin has closed and what it holds has run; when Node has gone (stdout hung
 * up or a write fails) it kills every job's group and exits. A Python older than 3.8 exits with
 * SPAWNER_TOO_OLD.
 */
export const SPAWNER_TOO_OLD = 97;

export const SPAWNER_SCRIPT = String.raw`
import os, sys
# Kept parseable by any Python (no f-strings): an old one must reach this line and say so.
if sys.version_info < (3, 8):
    os._exit(${SPAWNER_TOO_OLD})
import codecs, errno, select, time

# The C modules under signal and json: their Python wrappers import enum, re and more, which took
# ~9 ms of a start that the first jobs wait for (Python 3.11). Signals are plain numbers here.
try:
    import _signal as signal
except ImportError:
    import signal
try:
    from _json import make_scanner

    class JsonOptions(object):
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float

    scan_json = make_scanner(JsonOptions())

    def loads(line):
        return scan_json(line.decode('utf-8', 'surrogatepass'), 0)[0]
except ImportError:
    from json import loads

READ_SIZE = 65536
HOLD = 0.002  # seconds; see holding()
ENDED = select.POLLHUP | select.POLLERR | select.POLLNVAL
POSIX_SPAWN_DUP2 = os.POSIX_SPAWN_DUP2

# A lone surrogate in a JS string becomes U+FFFD on its way to a process, as Node encodes it.
codecs.register_error('testcloud', lambda error: (b'\xef\xbf\xbd' * (error.end - error.start), error.end))


def utf8(text):
    return text.encode('utf-8', 'testcloud')


class Job(object):
    __slots__ = ('seq', 'group', 'exited', 'fds', 'kept', 'cap')

    def __init__(self, seq, pid, fds, cap):
        self.seq = seq
        self.group = pid  # the leader's pid is the group's id (held by its zombie until the job is over)
        self.exited = False  # X sent; the leader is a zombie until the job is over
        self.fds = fds  # stream readers not at end of file yet
        self.kept = [0, 0, 0]  # bytes forwarded, by stream (1, 2)
        self.cap = cap


class Spawner(object):
    def __init__(self):
        # Everything that needs no word from Node is done before the first line: a prestarted
        # spawner answers that line at once.
        self.slots = float('inf')
        self.queued = {}  # seq -> run request; a dict keeps the order they came in
        self.jobs = {}  # seq -> Job, from its start until it has exited and its streams are closed
        self.by_pid = {}  # leader pid -> Job whose exit is not known yet
        self.by_fd = {}  # stream reader -> (Job, 1 or 2)
        self.out = []
        self.partial = b''
        self.closing = set()  # jobs whose streams are closed and whose exit is not read yet
        self.hold_until = None  # when records held for such a job go anyway
        self.unsent_start = False  # an S record is waiting to be written
        self.env = {}
        self.shells = {}
        self.eof = False
        self.home = None
        self.null = os.open('/dev/null', os.O_RDONLY)
        # Signals Python ignores (SIGPIPE, SIGXFSZ) would stay ignored in jobs; handled ones are reset by exec.
        self.ignored = [s for s in signal.valid_signals() if signal.getsignal(s) == signal.SIG_IGN]
        self.wake, wake_write = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(wake_write, False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        self.poll = select.poll()
        self.poll.register(0, select.POLLIN)
        self.poll.register(1, 0)  # only to hear that Node has gone
        self.poll.register(self.wake, select.POLLIN)

    def configure(self, env, slots, home):
        os.chdir(utf8(home))
        self.home = os.open('.', os.O_RDONLY | os.O_DIRECTORY)
        self.env = dict((utf8(name), utf8(value)) for name, value in env.items())
        self.slots = slots or float('inf')

    def run(self, early):
        self.out.append(b'R %d.%d\n' % sys.version_info[:2])
        self.take(early)  # requests that came with the first line
        self.start_queued()
        self.flush()
        while not (self.eof and not self.queued and not self.jobs):
            reap = False
            timeout = None if self.hold_until is None else max(0.0, (self.hold_until - time.monotonic()) * 1000)
            for fd, events in self.poll.poll(timeout):
                if fd in self.by_fd:
                    self.on_stream(fd, events)
                elif fd == self.wake:
                    os.read(self.wake, 4096)
                    reap = True
                elif fd == 0:
                    self.on_input(os.read(0, READ_SIZE))
                elif fd == 1:
                    self.node_gone()
            if reap:
                self.reap()
            self.start_queued()
            if self.holding():
                continue
            self.flush()
        self.flush()

    def start_queued(self):
        while self.queued and len(self.jobs) < self.slots:
            self.start(self.queued.pop(next(iter(self.queued))))

    def holding(self):
        """
        A job's streams mostly close a moment before its exit can be read (SIGCHLD comes next):
        its records wait for the exit, up to HOLD, so that Node is woken once per job. Never a
        start: should Python die, Node must know which jobs it had started. A job whose shell
        runs on with its streams closed is waited for once, not for the rest of its run.
        """
        if not self.closing or not self.out or self.unsent_start:
            self.hold_until = None
            return False
        now = time.monotonic()
        if self.hold_until is None:
            self.hold_until = now + HOLD
        if now < self.hold_until:
            return True
        self.hold_until = None
        self.closing.clear()
        return False

    def on_input(self, data):
        if not data:
            self.eof = True
            self.poll.unregister(0)
            return
        self.take(data)

    def take(self, data):
        lines = (self.partial + data).split(b'\n')
        self.partial = lines.pop()
        for line in lines:
            request = loads(line)
            kind = request[0]
            if kind == 'r':
                self.queued[request[1]] = request
            elif kind == 'k':
                self.kill(request[1], request[2])
            elif kind == 'a':
                job = self.jobs.get(request[1])
                if job is not None:
                    for fd in list(job.fds):
                        self.close_stream(job, fd)

    def start(self, request):
        seq, cmd, cwd, extra, cap = request[1:6]
        env = self.env
        if extra:
            env = dict(env)
            for name, value in extra.items():
                env[utf8(name)] = utf8(value)
        shell = self.shell(env.get(b'PATH'))
        fds = []
        try:
            if cwd:
                try:
                    os.chdir(utf8(cwd))
                except OSError:
                    self.out.append(b'F %d cwd\n' % seq)
                    return
            try:
                out_read, out_write = os.pipe()
                fds += (out_read, out_write)
                err_read, err_write = os.pipe()
                fds += (err_read, err_write)
                pid = os.posix_spawn(
                    shell,
                    [b'sh', b'-c', utf8(cmd)],
                    env,
                    file_actions=((POSIX_SPAWN_DUP2, self.null, 0), (POSIX_SPAWN_DUP2, out_write, 1), (POSIX_SPAWN_DUP2, err_write, 2)),
                    setpgroup=0,
                    setsigmask=(),
                    setsigdef=self.ignored,
                )
            finally:
                if cwd:
                    os.fchdir(self.home)
        except Exception as error:
            for fd in fds:
                os.close(fd)
            self.out.append(b'F %d %s\n' % (seq, utf8(describe(error, shell))))
            return
        os.close(out_write)
        os.close(err_write)
        job = Job(seq, pid, [out_read, err_read], cap)
        self.jobs[seq] = job
        self.by_pid[pid] = job
        self.by_fd[out_read] = (job, 1)
        self.by_fd[err_read] = (job, 2)
        self.poll.register(out_read, select.POLLIN)
        self.poll.register(err_read, select.POLLIN)
        self.out.append(b'S %d %d %d\n' % (seq, pid, time.monotonic_ns()))
        self.unsent_start = True

    def shell(self, path):
        """sh as execa finds it: on the job's PATH (looked up once per PATH)."""
        found = self.shells.get(path)
        if found is None:
            found = b'/bin/sh'
            for folder in (path or b'').split(b':'):
                candidate = os.path.join(folder or b'.', b'sh')
                if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
                    found = os.path.abspath(candidate)
                    break
            self.shells[path] = found
        return found

    def on_stream(self, fd, events):
        job, stream = self.by_fd[fd]
        while True:
            data = os.read(fd, READ_SIZE)
            if not data:
                self.close_stream(job, fd)
                return
            self.forward(job, stream, data)
            # Without a writer left, read to the end now: a job that has ended costs one wake-up.
            if not events & ENDED:
                return

    def forward(self, job, stream, data):
        size = len(data)
        room = job.cap - job.kept[stream]
        if room >= size:
            job.kept[stream] += size
            self.out += (b'O %d %d %d\n' % (job.seq, stream, size), data)
            return
        if room > 0:
            job.kept[stream] += room
            self.out += (b'O %d %d %d\n' % (job.seq, stream, room), data[:room])
        self.out.append(b'D %d %d %d\n' % (job.seq, stream, size - max(room, 0)))

    def close_stream(self, job, fd):
        self.poll.unregister(fd)
        os.close(fd)
        del self.by_fd[fd]
        job.fds.remove(fd)
        if not job.fds:
            if job.exited:
                self.end(job)
            else:
                self.closing.add(job)
            self.out.append(b'C %d\n' % job.seq)

    def reap(self):
        """Reads the exit of each job whose leader has ended, leaving it a zombie while its streams are open."""
        for pid, job in list(self.by_pid.items()):
            if job.fds:
                # WNOWAIT: the zombie stays, and with it the pid and the group id.
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                if info is None:
                    continue
                killed = info.si_code != os.CLD_EXITED
                status = info.si_status
            else:
                # Its streams are closed: the job is over the moment its leader is, reaped at once.
                done, raw = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
                killed = os.WIFSIGNALED(raw)
                status = os.WTERMSIG(raw) if killed else os.WEXITSTATUS(raw)
            del self.by_pid[pid]
            job.exited = True
            self.closing.discard(job)
            if killed:
                self.out.append(b'X %d - %d\n' % (job.seq, status))
            else:
                self.out.append(b'X %d %d -\n' % (job.seq, status))
            if not job.fds:
                del self.jobs[job.seq]

    def end(self, job):
        """Reaps the zombie leader of a job that is over (exited, streams closed or given up on) and forgets the job."""
        os.waitpid(job.group, 0)
        del self.jobs[job.seq]

    def kill(self, seq, signum):
        job = self.jobs.get(seq)
        if job is not None:
            # Its group may still exist: the leader runs, or has ended while something holds its
            # streams. Either way the leader is not reaped (a zombie at most) until the job is over
            # and forgotten, so its pid, the group's id, cannot have been given to anyone else.
            try:
                os.killpg(job.group, signum)
            except OSError:
                pass
        elif self.queued.pop(seq, None) is not None:
            self.out.append(b'Q %d\n' % seq)

    def flush(self):
        if not self.out:
            return
        self.unsent_start = False
        data = memoryview(b''.join(self.out))
        del self.out[:]
        while data:
            try:
                written = os.write(1, data)
            except BlockingIOError:
                select.select([], [1], [])
                continue
            except OSError:
                self.node_gone()
            data = data[written:]

    def node_gone(self):
        """Node has gone (the worker died): nobody is left to report to or to stop the jobs."""
        for job in self.jobs.values():
            try:
                os.killpg(job.group, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)


def describe(error, shell):
    if isinstance(error, OSError) and error.errno:
        return 'cannot start %s: %s (%s)' % (shell.decode('utf-8', 'replace'), error.strerror, errno.errorcode.get(error.errno, error.errno))
    return ('cannot start the command: %s' % error).replace('\n', ' ')


def first_line():
    data = b''
    while b'\n' not in data:
        chunk = os.read(0, READ_SIZE)
        if not chunk:
            os._exit(0)  # started ahead of need, and not needed after all
        data += chunk
    line, rest = data.split(b'\n', 1)
    return loads(line), rest


spawner = Spawner()
setup, rest = first_line()
spawner.configure(setup[1], setup[2], setup[3])
spawner.run(rest)
# Everything is written and every job is over: the interpreter's own teardown is not worth waiting for.
os._exit(0)
`;
