"""The notebook's side of a lab host: start the sandbox, talk to its agent, end it.

The sandbox is `unshare --user --net --mount --uts --pid --fork --kill-child`: no sudo
at run time, the same as root or as an ordinary user. Its agent holds one end of two
pipes; when this process closes them — on close(), on garbage collection, or because
the kernel died, SIGKILL included — the agent exits and the sandbox goes with it.
"""
from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, TypeVar

from ..machine import tools
from ..machine.ids import (
    id_mapping,
    own_subordinate_range,
    root_lab_range,
    unreadable_for_others,
)
from ..machine.limits import Limits
from ..machine.userns import explain_start_failure
from ..model import errors
from ..model.protocol import Cancel, Chunk, Failure, Ready, Request, Run, rebuild_error

R = TypeVar("R")

START_TIMEOUT = 45.0   # generous: twenty labs starting at once on a loaded 2-core server take a while
NAMESPACES = ["--user", "--net", "--mount", "--uts", "--pid", "--fork", "--kill-child"]
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent   # the folder holding lablib/


def launch_argv(mapping: str) -> list[str]:
    unshare = tools.find("unshare") or "unshare"
    if mapping == "range":
        # For root, the user namespace is made before (agent.contain_then_exec) and the
        # notebook side writes its maps (write_range_map): root may map any range
        # without /etc/subuid, and keeps setgroups allowed.
        return [unshare, *[n for n in NAMESPACES if n != "--user"]]
    if mapping == "subids":
        # The notebook side maps the ids (map_subordinate_ids) while the sandbox's first
        # process waits for it on stdin: unshare's own --map-auto forks a helper that,
        # if unshare is killed at the wrong moment, waits forever.
        return [unshare, *NAMESPACES, "sh", "-c", WAIT_FOR_MAP, "sh"]
    return [unshare, *NAMESPACES, "--map-root-user"]


# Run in the new user namespace before the agent: wait (blocked on stdin, not spinning)
# until the notebook side has mapped its ids, then exec — as the mapped root, which is
# what grants the capabilities. If the notebook side dies first, stdin ends and so does this.
WAIT_FOR_MAP = 'read -r go || exit 1; exec </dev/null; exec "$@"'


def needed_paths() -> list[str]:
    """What the lab host needs from the machine: this Python, its packages, lablib, and
    Docker's programs where they were fetched into the project.
    They stay visible (read-only) even where the lab has a private place (/tmp, /root)."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    from ..machine.docker import (
        UNPACKED,  # Docker's programs, when fetched into the project
    )
    candidates = {*prefixes, os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable)),
                  str(PACKAGE_ROOT / "lablib"), str(UNPACKED), *os.environ.get("PYTHONPATH", "").split(os.pathsep)}
    # Package folders only: not the script's or the notebook's own folder (sys.path[0]),
    # which may be a whole /tmp.
    candidates.update(p for p in sys.path if p and os.path.isabs(p)
                      and ("-packages" in p or any(p.startswith(prefix) for prefix in prefixes)))
    paths = sorted({os.path.realpath(p) for p in candidates if p and os.path.isabs(p) and os.path.exists(p)}
                   | {os.path.abspath(p) for p in candidates if p and os.path.isabs(p) and os.path.exists(p)})
    kept: list[str] = []
    for path in paths:   # sorted: a folder comes before what is inside it
        if path in NEVER_KEPT:
            continue
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


# A lab's private places themselves are never the machine's, whatever sys.path says.
NEVER_KEPT = {"/", "/tmp", "/var/tmp", "/root", "/run", "/dev/shm", "/var", "/dev"}


def required_for_root_labs() -> list[str]:
    """Files a lab started by root must be able to read as its unprivileged range."""
    import importlib.util
    paths = [os.path.realpath(sys.executable), os.path.join(sys.prefix, "pyvenv.cfg"),
             os.path.dirname(os.__file__), str(PACKAGE_ROOT / "lablib" / "inside" / "agent.py")]
    spec = importlib.util.find_spec("pyroute2")
    if spec and spec.origin:
        paths.append(spec.origin)
    return [p for p in paths if os.path.exists(p)]


def _wait_for_user_namespace(pid: int, timeout: float = START_TIMEOUT) -> bool:
    own = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink(f"/proc/{pid}/ns/user") != own:
                return True   # unshare has made its user namespace
        except OSError:
            return False      # it died; the start-up error says why
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0002)


def map_subordinate_ids(pid: int) -> str | None:
    """Map root of `pid`'s new user namespace to this user, and 1.. to this user's
    subordinate ranges, with newuidmap/newgidmap; returns their complaint if they fail."""
    if not _wait_for_user_namespace(pid):
        return None
    for tool, path, own in (("newuidmap", "/etc/subuid", os.getuid()), ("newgidmap", "/etc/subgid", os.getgid())):
        subordinate = own_subordinate_range(path)
        if subordinate is None:
            return f"{tool}: no range for you in {path}"
        done = subprocess.run([tools.find(tool) or tool, str(pid), "0", str(own), "1", "1", *map(str, subordinate)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return done.stderr.strip() or f"{tool} failed"
    return None


def write_range_map(pid: int, first: int, count: int, timeout: float = START_TIMEOUT) -> bool:
    """Map ids 0..count-1 of the user namespace `pid` creates to first..first+count-1."""
    if not _wait_for_user_namespace(pid, timeout):
        return False
    try:
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(f"0 {first} {count}\n")
    except OSError:
        return False
    return True


def limit_arguments(limits: Limits) -> list[str]:
    """The agent's rlimits: processes always (per lab, as Linux counts them per user
    namespace); memory per process only where no cgroup holds the whole lab."""
    return ["--max-processes", str(limits.processes),
            *([] if limits.by_cgroup else ["--max-memory", str(limits.memory)])]


def root_launch(agent: list[str], keep: list[str], place_size: int) -> list[str]:
    """The argv that starts a lab as root: contain() as the machine's root in a mount
    namespace of its own, then the lab's user namespace, waiting for its map on stdin."""
    first, _count = root_lab_range()
    unshare = tools.find("unshare") or "unshare"
    python = agent[0]
    return [unshare, "--mount", "--propagation", "private",
            python, "-m", "lablib.inside.agent", "--outer", str(first), "--place-size", str(place_size),
            *[f"--keep={k}" for k in keep], "--",
            *launch_argv("range"), *agent, "--contained"]


def reply_bound(request: Request) -> float:
    """Seconds within which the agent answers `request`: its own timeout, and a grace to stop."""
    timeout = getattr(request, "timeout", None)
    if isinstance(timeout, (int, float)) and timeout > 0:
        return float(timeout) + 15.0
    return 120.0


class Sandbox:
    """A running lab host sandbox: its process and the pipes to its agent."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.mapping = id_mapping()
        self.limits = limits or Limits()
        self.place_size = min(256 << 20, self.limits.memory // 4)   # each of /tmp, /root, ...
        try:
            self.ready = self._start()
        except errors.SandboxUnavailable:
            if self.mapping != "subids":
                raise
            # A broken newuidmap set-up must not stop the labs: fall back to one uid.
            self.mapping = "single"
            self.ready = self._start()
        try:
            self._ids = itertools.count(1)
            self._send_lock = threading.Lock()
            self._replies = Replies(self._from_agent, self.process)
            self._finalizer = weakref.finalize(self, _shutdown, self.process, self._to_agent)
        except BaseException:   # Ctrl-C right after the start: end the lab, do not hold it
            _shutdown(self.process, self._to_agent)
            self._from_agent.close()
            raise

    def _start(self) -> Ready:
        keep = needed_paths()
        if self.mapping == "range":
            unreadable = unreadable_for_others(required_for_root_labs())
            if unreadable:
                raise errors.SandboxUnavailable(
                    f"a lab started by root runs as an unprivileged user, who cannot read {unreadable}; "
                    "put the project and its .venv where every user can read them (chmod o+rX), "
                    "or start the lab as an ordinary user")
        inbox_read, inbox_write = os.pipe()      # notebook -> agent
        outbox_read, outbox_write = os.pipe()    # agent -> notebook
        go_read, go_write = os.pipe() if self.mapping in ("range", "subids") else (None, None)   # "mapped: go on"
        theirs = [inbox_read, outbox_write, go_read]
        ours = [inbox_write, outbox_read, go_write]
        self.process = None
        stderr = tempfile.TemporaryFile()
        try:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p))
            agent = [sys.executable, "-m", "lablib.inside.agent", "--inbox", str(inbox_read),
                     "--outbox", str(outbox_write), "--place-size", str(self.place_size),
                     *limit_arguments(self.limits), *[f"--keep={k}" for k in keep]]
            argv = root_launch(agent, keep, self.place_size) if self.mapping == "range" \
                else launch_argv(self.mapping) + agent
            argv = self.limits.launch_prefix() + argv
            try:
                self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL if go_read is None else go_read,
                                                stdout=subprocess.DEVNULL, stderr=stderr,
                                                pass_fds=(inbox_read, outbox_write), env=env, cwd="/",
                                                # A session of its own: Jupyter's interrupt (■) signals the
                                                # kernel's process group; only the kernel must get it.
                                                start_new_session=True)
            except FileNotFoundError:
                raise errors.SandboxUnavailable(
                    "cannot start a lab host: 'unshare' is missing; sudo apt-get install util-linux") from None
            finally:
                _close_all(theirs)
            mapping_failed = None
            if go_write is not None:
                # Blocked on this pipe, the sandbox's first process waits for its map; if
                # this process dies first, the pipe ends and the sandbox with it.
                if self.mapping == "range":
                    mapped = write_range_map(self.process.pid, *root_lab_range())
                else:
                    mapping_failed = map_subordinate_ids(self.process.pid)
                    mapped = mapping_failed is None
                if mapped:
                    os.write(go_write, b"go\n")
            ours = [inbox_write, outbox_read]
            _close_all([go_write])
            self._to_agent = Connection(inbox_write, readable=False)
            ours.remove(inbox_write)    # the connection owns it now
            self._from_agent = Connection(outbox_read, writable=False)
            ours.remove(outbox_read)
            try:
                if not self._from_agent.poll(START_TIMEOUT):
                    raise errors.SandboxUnavailable(
                        f"the lab host did not start within {START_TIMEOUT:.0f} s; run: python -m lablib doctor")
                _, message = self._from_agent.recv()
            except (EOFError, OSError):
                message = None
            if isinstance(message, Ready):
                return message
            stderr.seek(0)
            complaint = mapping_failed or stderr.read().decode(errors="replace").strip()
            if isinstance(message, Failure):
                complaint = str(rebuild_error(message)) + ("\n" + complaint if complaint else "")
            raise errors.SandboxUnavailable(explain_start_failure(complaint))
        except BaseException:
            # Whatever stopped the start — an error, Ctrl-C, a signal — nothing of it remains:
            # a half-built lab would otherwise live on, held by the saved traceback.
            _close_all(ours)
            for connection in (self.__dict__.pop("_to_agent", None), self.__dict__.pop("_from_agent", None)):
                if connection is not None:
                    connection.close()
            if self.process is not None:
                self.process.kill()   # --kill-child takes the sandbox's PID 1 down with it
                self.process.wait()
            raise
        finally:
            stderr.close()

    def _abandon(self) -> None:
        _shutdown(self.process, self._to_agent)
        self._from_agent.close()

    # -- talking to the agent -----------------------------------------------------------
    @property
    def dead_reason(self) -> str | None:
        return self._replies.dead_reason

    def _send(self, request_id: int, request: Request) -> None:
        with self._send_lock:
            self._to_agent.send((request_id, request))

    def call(self, request: Request[R], on_chunk: Callable[[str, bytes], None] | None = None) -> R:
        """Have the agent do `request` (model/protocol.py); stream a Run's output to
        `on_chunk(stream, data)`; return the agent's reply, or raise the error it raised."""
        if self.dead_reason:
            raise errors.AgentDied(self.dead_reason)
        request_id = next(self._ids)
        replies: queue.SimpleQueue = queue.SimpleQueue()
        self._replies.pending[request_id] = replies
        interrupted = overdue = False
        try:
            try:
                self._send(request_id, request)
            except (OSError, ValueError):
                raise errors.AgentDied(self.dead_reason or "the lab host's agent is gone; run lab.reset()") from None
            # However the command behaves, the agent answers within its timeout and the
            # grace to stop it; past that bound the lab host is stuck: say so, do not hang.
            bound = time.monotonic() + reply_bound(request)
            while True:
                try:
                    message = replies.get(timeout=max(0.0, bound - time.monotonic()))
                except queue.Empty:
                    if isinstance(request, Run) and not overdue:
                        overdue = True   # ask the agent to stop it, and give that a moment
                        self._send(next(self._ids), Cancel(target=request_id))
                        bound = time.monotonic() + 10.0
                        continue
                    raise errors.LabError(f"the lab host did not answer ({type(request).__name__}) in time; "
                                          "run lab.reset() for a fresh lab host") from None
                except KeyboardInterrupt:
                    if interrupted or not isinstance(request, Run):
                        raise
                    interrupted = True   # stop the command as Ctrl-C would, then report
                    self._send(next(self._ids), Cancel(target=request_id))
                    continue
                if message is AGENT_GONE:
                    raise errors.AgentDied(self.dead_reason)
                if isinstance(message, Chunk):
                    if on_chunk:
                        on_chunk(message.stream, message.data)
                    continue
                if isinstance(message, Failure):
                    raise rebuild_error(message)
                if interrupted:
                    raise KeyboardInterrupt
                return message
        finally:
            self._replies.pending.pop(request_id, None)

    @property
    def notes(self) -> list[str]:
        """What fell back while the lab host started (e.g. no /etc overlay), for the learner."""
        return self.ready.notes

    @property
    def command_environment(self) -> dict[str, str]:
        """The environment the agent gives every command in the lab host."""
        return self.ready.environment

    def init_pid(self) -> int:
        """The sandbox's PID 1, as this process sees it (for nsenter --target)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        if not children:
            raise errors.AgentDied(self.dead_reason or "the lab host has no init process")
        return int(children[0])

    def out_of_memory(self) -> bool:
        """Whether the lab's cgroup (where limits are cgroups) has killed a process for
        memory since the last call."""
        if not self.limits.by_cgroup:
            return False
        try:
            path = Path(f"/proc/{self.process.pid}/cgroup").read_text().split("0::", 1)[1].splitlines()[0]
            events = Path(f"/sys/fs/cgroup{path}/memory.events").read_text().split()
            kills = int(events[events.index("oom_kill") + 1])
        except (OSError, IndexError, ValueError):
            return False
        seen, self._oom_kills = getattr(self, "_oom_kills", 0), kills
        return kills > seen

    @property
    def alive(self) -> bool:
        return self.dead_reason is None and self.process.poll() is None

    def close(self) -> None:
        """End the sandbox and wait until its last process is gone."""
        if self._replies.dead_reason is None:
            self._replies.dead_reason = "this lab host was closed; run lab.reset() for a fresh one"
        self._finalizer()
        self._replies.thread.join(2.0)
        self._from_agent.close()


AGENT_GONE = object()   # what a waiting request gets instead of a reply when the agent has died


class Replies:
    """Reads the agent's messages in a thread and hands each to the request waiting for it.

    The thread holds this object, not the Sandbox, so a forgotten Sandbox can still be
    garbage-collected (and its finalizer end the lab host).
    """

    def __init__(self, connection: Connection, process: subprocess.Popen) -> None:
        self.connection, self.process = connection, process
        self.pending: dict[int, queue.SimpleQueue] = {}
        self.dead_reason: str | None = None
        self.thread = threading.Thread(target=self.read, daemon=True, name="lablib-agent-reader")
        self.thread.start()

    def read(self) -> None:
        try:
            while True:
                request_id, message = self.connection.recv()
                waiting = self.pending.get(request_id)
                if waiting is not None:
                    waiting.put(message)
        except (EOFError, OSError):
            pass
        if self.dead_reason is None:
            code = self.process.poll()
            self.dead_reason = ("the lab host's agent stopped unexpectedly"
                                + (f" (exit code {code})" if code is not None else "")
                                + "; everything in it is gone. Run lab.reset() for a fresh lab host")
        for waiting in list(self.pending.values()):
            waiting.put(AGENT_GONE)


def _close_all(fds: list[int | None]) -> None:
    for fd in fds:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _shutdown(process: subprocess.Popen, to_agent: Connection) -> None:
    """Close the agent's pipe (it exits, and PID 1 with it) and reap the sandbox."""
    try:
        to_agent.close()
    except OSError:
        pass
    try:
        process.wait(2.0)
    except subprocess.TimeoutExpired:
        process.kill()   # --kill-child takes the sandbox's PID 1 down with it
        process.wait()
