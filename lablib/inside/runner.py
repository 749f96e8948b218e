"""Inside the sandbox: run commands and background processes for the notebook.

Every command runs as `bash -c CMD`, in the lab host or in a named namespace (through
`ip netns exec`, exactly as a learner would type it). Output streams back as it comes;
a command is stopped when it runs past its timeout, when the learner interrupts it, or
when it sits waiting for keyboard input that will never come.
"""
from __future__ import annotations

import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..model.errors import LabError, NamespaceNotFound
from ..model.names import HOST, canonical_ns, is_world, world_host
from ..model.protocol import CommandOutput, ProcessStatus
from .labhost import RUN, WORLD, WORLD_RESOLV_CONF
from .linux import socket_inodes

OUTPUT_LIMIT = 1 << 20        # bytes kept (and streamed) per stream of one command
LOG_LIMIT = 256 << 10         # bytes kept of a background process's log (the newest)
EXIT_GRACE = 0.05             # after the command exits, how long to wait for its pipes
STDIN_IDLE = 0.5              # quiet seconds before checking whether it waits for input
STOP_GRACE = 0.5              # between Ctrl-C and SIGKILL when stopping a command
UNKILLABLE_GRACE = 5.0        # after SIGKILL, how long to wait for a process stuck in the kernel

Emit = Callable[[str, bytes], None]


def netns_names() -> list[str]:
    """The learner's namespaces, as `ip netns list` would show them."""
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def world_names() -> list[str]:
    return sorted(os.listdir(WORLD)) if WORLD.exists() else []


# Anything bash would interpret; a command without it means the same exec'd directly.
SHELL_SYNTAX = frozenset("$`|&;<>()*?[]{}~!#\\\"'\n=%")


def direct_argv(command: str, path: str) -> list[str] | None:
    """`command` as argv when it is one plain command bash would simply exec, else None.

    Skipping bash saves its start-up on the most common calls (`ip link`, `ping -c1 X`);
    bash still runs anything with shell syntax, builtins, and unknown commands (so its
    own "command not found" message is what the learner sees).
    """
    if SHELL_SYNTAX.intersection(command):
        return None
    words = command.split()
    if not words or shutil.which(words[0], path=path) is None:
        return None
    return words


ARGUMENT_LIMIT = 100_000      # bytes; Linux refuses one argument over 128 KiB (MAX_ARG_STRLEN)
SCRIPTS = RUN / "scripts"     # where a command too long for a command line waits to run


def script_for(command: str) -> str:
    """A file holding a command too long for a command line (a big %%lab cell)."""
    SCRIPTS.mkdir(parents=True, exist_ok=True)
    descriptor, path = tempfile.mkstemp(dir=SCRIPTS, suffix=".sh")
    with os.fdopen(descriptor, "w") as script:
        script.write(command)
    return path


def argv_for(command: str, ns: str | None, path: str = "") -> list[str]:
    """The argv that runs `command` in namespace `ns` (None: the lab host itself)."""
    if len(command.encode()) > ARGUMENT_LIMIT:
        # bash reads it from a file instead; the file goes when the command ends (Runner).
        command = f"source {shlex.quote(script_for(command))}"
    shell = direct_argv(command, path) or ["bash", "-c", command]
    if canonical_ns(ns) == HOST:
        return shell
    if is_world(ns):
        host = world_host(ns)
        if not (WORLD / host).exists():
            raise NamespaceNotFound(
                f"the outside world has no host '{host}'; it has: {', '.join(world_names())}")
        # A mount namespace of the command's own gives it the outside world's resolv.conf.
        return ["nsenter", f"--net={WORLD / host}", "unshare", "--mount", "sh", "-c",
                f'mount --bind {WORLD_RESOLV_CONF} /etc/resolv.conf && exec bash -c "$1"', "sh", command]
    if "/" in ns or not (Path("/run/netns") / ns).exists():
        existing = netns_names()
        have = f"existing: {', '.join(existing)}" if existing else "there are none yet (create one with: ip netns add NAME)"
        raise NamespaceNotFound(f"namespace '{ns}' does not exist in this lab; {have}")
    return ["ip", "netns", "exec", ns, *shell]


@dataclass
class Capture:
    """What one stream printed, up to OUTPUT_LIMIT bytes; the rest is only counted."""
    data: bytearray = field(default_factory=bytearray)
    dropped: int = 0

    def add(self, chunk: bytes) -> bytes:
        """Keep what fits; return the part that was kept (to stream on)."""
        room = OUTPUT_LIMIT - len(self.data)
        kept = chunk[:max(room, 0)]
        self.data += kept
        self.dropped += len(chunk) - len(kept)
        return kept


@dataclass
class Job:
    process: subprocess.Popen
    cancelled: bool = False


class Background:
    """A process that runs on after the call that started it (a server, a capture)."""

    def __init__(self, process: subprocess.Popen, name: str, command: str, ns: str | None):
        self.process, self.name, self.command, self.ns = process, name, command, ns
        self.log = bytearray()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True, name=f"log:{name}").start()

    def _drain(self) -> None:
        stream = self.process.stdout
        while chunk := stream.read1(65536):
            with self._lock:
                self.log += chunk
                if len(self.log) > LOG_LIMIT:
                    del self.log[:len(self.log) - LOG_LIMIT]
        self.process.wait()

    def status(self) -> ProcessStatus:
        with self._lock:
            log = bytes(self.log)
        return ProcessStatus(pid=self.process.pid, name=self.name, command=self.command,
                             ns=self.ns, exit_code=self.process.poll(), log=log)

    def stop(self, timeout: float = 2.0) -> ProcessStatus:
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return self.status()


def netns_path(ns: str | None) -> Path | None:
    if canonical_ns(ns) == HOST:
        return None
    return WORLD / world_host(ns) if is_world(ns) else Path("/run/netns") / ns


def _wait_until_inside(process: subprocess.Popen, ns: str | None, timeout: float = 1.0) -> None:
    """Return once `process` has joined namespace `ns` (ip netns exec takes a moment),
    so that whatever comes next — nsenter -t PID, a capture — finds it there."""
    target = netns_path(ns)
    if target is None:
        return
    wanted = os.stat(target).st_ino
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if os.stat(f"/proc/{process.pid}/ns/net").st_ino == wanted:
                return
        except OSError:
            return
        time.sleep(0.0005)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


# read(2)-family system call numbers, by machine: a process blocked in one of them with
# first argument 0 is reading its standard input.
READ_SYSCALLS = {"x86_64": {0, 17, 19}, "aarch64": {63, 65, 67}}.get(os.uname().machine, set())


# What programs print when the lab's limits stop them (fork/clone failing with EAGAIN under
# RLIMIT_NPROC or pids.max; allocation failing under RLIMIT_DATA).
PROCESS_LIMIT_SIGNS = (b"fork: retry: Resource temporarily unavailable", b"fork: Resource temporarily unavailable",
                       b"Cannot fork", b"can't fork", b"can't start new thread")
MEMORY_LIMIT_SIGNS = (b"MemoryError", b"Cannot allocate memory", b"std::bad_alloc", b"Out of memory",
                      b"out of memory")


def limit_reached(stderr: bytes) -> str | None:
    """Which of the lab's limits a command's complaints show it hit: processes, memory, or None."""
    if any(sign in stderr for sign in PROCESS_LIMIT_SIGNS):
        return "processes"
    if any(sign in stderr for sign in MEMORY_LIMIT_SIGNS):
        return "memory"
    return None


def process_limit_error() -> LabError:
    import resource
    limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    return LabError(f"this lab host has reached its limit of {limit} processes: something left running keeps "
                    "starting more (a fork bomb?); run lab.reset() for a fresh lab host "
                    "(Lab(max_processes=...) sets the limit)")


def waiting_for_stdin(session: int, stdin_name: str) -> str | None:
    """The name of a process of `session` blocked reading our stdin pipe, if any."""
    for pid in session_members(session):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2] != "S" or os.readlink(f"/proc/{pid}/fd/0") != stdin_name:
                continue
            call = Path(f"/proc/{pid}/syscall").read_text().split()
            if call and call[0].isdigit() and int(call[0]) in READ_SYSCALLS and int(call[1], 16) == 0:
                return stat[stat.index("(") + 1:stat.rindex(")")]
        except (OSError, ValueError, IndexError):
            continue
    return None


class Runner:
    """Runs the notebook's commands in the lab host; one per sandbox."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.jobs: dict[int, Job] = {}
        self.background: dict[int, Background] = {}
        self.leftover = bytearray()   # what background children of finished commands print
        self._lock = threading.Lock()

    # -- commands ------------------------------------------------------------------
    def run(self, request_id: int, command: str, ns: str | None, timeout: float,
            emit: Emit | None = None, together: bool = False) -> CommandOutput:
        """Run `command`; with `together`, its stderr goes into its stdout, one stream in the
        order written, as a terminal shows them (the stderr reported is then empty)."""
        argv = argv_for(command, ns, self.env["PATH"])
        started = time.monotonic()
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT if together else subprocess.PIPE,
                                       env=self.env, cwd=self.env["HOME"], start_new_session=True)
        except FileNotFoundError as error:
            raise LabError(f"cannot start '{argv[0]}': not installed ({error.strerror})") from None
        except BlockingIOError:
            raise process_limit_error() from None
        job = self.jobs[request_id] = Job(process)
        stdin_name = f"pipe:[{os.fstat(process.stdin.fileno()).st_ino}]"
        captures = {"stdout": Capture(), "stderr": Capture()}
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        if not together:
            selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        stopped: str | None = None
        stopped_at = exited_at = None
        waiting_program: str | None = None
        last_output = started
        exit_code: int | None = None
        try:
            while True:
                if selector.get_map():
                    events = selector.select(0.1)
                else:   # it closed its output (exec >/dev/null) but may run on: watch it all the same
                    events = []
                    try:
                        process.wait(0.1)
                    except subprocess.TimeoutExpired:
                        pass
                for key, _ in events:
                    chunk = key.fileobj.read1(65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    last_output = time.monotonic()
                    kept = captures[key.data].add(chunk)
                    if emit and kept:
                        emit(key.data, kept)
                now = time.monotonic()
                if exited_at is None and process.poll() is not None:
                    exited_at = now
                if exited_at is not None:
                    if not selector.get_map() or now - exited_at > EXIT_GRACE:
                        break   # background children still holding the pipes: let them be
                    continue
                if stopped:
                    if now - stopped_at > UNKILLABLE_GRACE:
                        break   # stuck in the kernel even after SIGKILL: stop waiting for it
                    continue
                if job.cancelled:
                    stopped = "interrupted"
                elif now - started > timeout:
                    stopped = "timeout"
                elif now - last_output > STDIN_IDLE:
                    waiting_program = waiting_for_stdin(process.pid, stdin_name)
                    if waiting_program:
                        stopped = "stdin"
                if stopped:
                    stopped_at = now
                    self._stop(process)
        finally:
            leftover = list(selector.get_map().values())
            selector.close()
            for key in leftover:
                threading.Thread(target=self._drain_leftover, args=(key.fileobj,),
                                 daemon=True).start()
            process.stdin.close()
            for word in " ".join(argv).split():
                if word.startswith(str(SCRIPTS) + "/"):
                    Path(word).unlink(missing_ok=True)
            try:
                exit_code = process.wait(UNKILLABLE_GRACE)
            except subprocess.TimeoutExpired:
                exit_code = -signal.SIGKILL
            self.jobs.pop(request_id, None)
        return CommandOutput(
            stdout=bytes(captures["stdout"].data), stderr=bytes(captures["stderr"].data),
            dropped=captures["stdout"].dropped + captures["stderr"].dropped,
            exit_code=exit_code, stopped=stopped, waiting_program=waiting_program,
            duration=time.monotonic() - started,
            limit=limit_reached(bytes(captures["stderr"].data)) if (stopped or exit_code) else None)

    def _stop(self, process: subprocess.Popen) -> None:
        """Stop a command as Ctrl-C would (so ping prints its summary), then for sure."""
        _signal_group(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)

    def _drain_leftover(self, stream) -> None:
        while chunk := stream.read1(65536):
            with self._lock:
                self.leftover += chunk
                del self.leftover[:max(0, len(self.leftover) - LOG_LIMIT)]
        stream.close()

    def cancel(self, target: int) -> None:
        job = self.jobs.get(target)
        if job:
            job.cancelled = True

    # -- background processes --------------------------------------------------------
    def spawn(self, command: str, ns: str | None, name: str | None = None,
              pass_fds: tuple[int, ...] = (), argv: list[str] | None = None) -> Background:
        argv = argv or argv_for(command, ns, self.env["PATH"])
        command = command or shlex.join(argv)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, env=self.env, cwd=self.env["HOME"],
                                       start_new_session=True, pass_fds=pass_fds)
        except BlockingIOError:
            raise process_limit_error() from None
        background = Background(process, name or command.split()[0], command, ns)
        self.background[process.pid] = background
        _wait_until_inside(process, ns)
        return background

    def find(self, pid: int) -> Background:
        try:
            return self.background[pid]
        except KeyError:
            raise LabError(f"no background process {pid} in this lab host") from None

    def wait_ready(self, pid: int, port: int | None, text: str | None, timeout: float) -> ProcessStatus:
        """Wait until a background process listens on `port` or has logged `text`."""
        background = self.find(pid)
        deadline = time.monotonic() + timeout
        while True:
            status = background.status()
            ready = ((text is not None and text.encode() in status.log)
                     or (port is not None and listening(pid, port)))
            if ready or status.exit_code is not None or time.monotonic() > deadline:
                status.ready = ready
                return status
            time.sleep(0.005)


def listening(pid: int, port: int) -> bool:
    """Whether the process `pid` (or one it started) listens on TCP or UDP `port`."""
    suffix = f":{port:04X}"
    inodes = set()
    for table, listen_state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            fields = line.split()
            if fields[1].endswith(suffix) and fields[3] == listen_state:
                inodes.add(int(fields[9]))
    return bool(inodes) and any(inodes & socket_inodes(member) for member in session_members(pid))


def session_members(session: int) -> list[int]:
    """Processes of the session led by `session` (spawned processes lead their own)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat[stat.rindex(")") + 2:].split()[3]) == session:
                    members.append(int(entry))
            except (OSError, ValueError):
                continue
    return members

