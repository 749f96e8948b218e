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
from typing import Callable

from ..machine import tools
from ..machine.ids import id_mapping
from ..machine.userns import explain_start_failure
from ..model import errors

START_TIMEOUT = 15.0
NAMESPACES = ["--user", "--net", "--mount", "--uts", "--pid", "--fork", "--kill-child"]


def launch_argv(mapping: str) -> list[str]:
    unshare = tools.find("unshare") or "unshare"
    # For root, the notebook side writes the maps itself (write_identity_map): root may
    # map every id without /etc/subuid, and keeps setgroups allowed.
    options = {"identity": [], "subids": ["--map-auto", "--map-root-user"],
               "single": ["--map-root-user"]}[mapping]
    return [unshare, *NAMESPACES, *options]


WAIT_FOR_MAP = 'until read -r _ < /proc/self/uid_map; do :; done; exec "$@"'


def write_identity_map(pid: int, timeout: float = 2.0) -> None:
    """Map every user and group id to itself in the user namespace `pid` creates."""
    own = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink(f"/proc/{pid}/ns/user") != own:
                break   # unshare has made its user namespace
        except OSError:
            return      # it died; the start-up error says why
        if time.monotonic() > deadline:
            return
        time.sleep(0.0002)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 0 4294967295\n")


class Sandbox:
    """A running lab host sandbox: its process and the pipes to its agent."""

    def __init__(self) -> None:
        self.mapping = id_mapping()
        try:
            self.ready = self._start()
        except errors.SandboxUnavailable:
            if self.mapping != "subids":
                raise
            # A broken newuidmap set-up must not stop the labs: fall back to one uid.
            self.mapping = "single"
            self.ready = self._start()
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._replies = Replies(self._from_agent, self.process)
        self._finalizer = weakref.finalize(self, _shutdown, self.process, self._to_agent)

    def _start(self) -> dict:
        inbox_read, inbox_write = os.pipe()      # notebook -> agent
        outbox_read, outbox_write = os.pipe()    # agent -> notebook
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (package_parent, os.environ.get("PYTHONPATH")) if p))
        stderr = tempfile.TemporaryFile()
        argv = launch_argv(self.mapping) + [
            sys.executable, "-m", "lablib.inside.agent", "--inbox", str(inbox_read), "--outbox", str(outbox_write)]
        if self.mapping == "identity":
            # Capabilities are granted at exec time only to a mapped root: wait for the map.
            position = len(launch_argv(self.mapping))
            argv[position:position] = ["sh", "-c", WAIT_FOR_MAP, "sh"]
        try:
            # A session of its own: Jupyter's interrupt (■) signals the kernel's whole process
            # group, and must reach only the kernel, which cancels the running command.
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=stderr, pass_fds=(inbox_read, outbox_write), env=env,
                                            start_new_session=True)
        except FileNotFoundError:
            raise errors.SandboxUnavailable(
                "cannot start a lab host: 'unshare' is missing; sudo apt-get install util-linux") from None
        finally:
            os.close(inbox_read)
            os.close(outbox_write)
        if self.mapping == "identity":
            write_identity_map(self.process.pid)
        self._to_agent = Connection(inbox_write, readable=False)
        self._from_agent = Connection(outbox_read, writable=False)
        try:
            if not self._from_agent.poll(START_TIMEOUT):
                raise errors.SandboxUnavailable(
                    f"the lab host did not start within {START_TIMEOUT:.0f} s; run: python -m lablib doctor")
            message = self._from_agent.recv()
        except (EOFError, OSError):
            message = None
        except errors.SandboxUnavailable:
            self._abandon()
            raise
        if message and "value" in message:
            return message["value"]
        self._abandon()
        stderr.seek(0)
        complaint = stderr.read().decode(errors="replace").strip()
        if message and "error" in message:
            complaint = message["error"][1] + ("\n" + complaint if complaint else "")
        raise errors.SandboxUnavailable(explain_start_failure(complaint))

    def _abandon(self) -> None:
        _shutdown(self.process, self._to_agent)
        self._from_agent.close()

    # -- talking to the agent -----------------------------------------------------------
    @property
    def dead_reason(self) -> str | None:
        return self._replies.dead_reason

    def _send(self, message: dict) -> None:
        with self._send_lock:
            self._to_agent.send(message)

    def request(self, op: str, on_chunk: Callable[[str, bytes], None] | None = None, **arguments):
        """Ask the agent to do `op`; stream chunks to `on_chunk`; return its value or raise."""
        if self.dead_reason:
            raise errors.AgentDied(self.dead_reason)
        request_id = next(self._ids)
        replies: queue.SimpleQueue = queue.SimpleQueue()
        self._replies.pending[request_id] = replies
        interrupted = False
        try:
            try:
                self._send({"id": request_id, "op": op, **arguments})
            except (OSError, ValueError):
                raise errors.AgentDied(self.dead_reason or "the lab host's agent is gone; run lab.reset()") from None
            while True:
                try:
                    message = replies.get()
                except KeyboardInterrupt:
                    if interrupted or op != "run":
                        raise
                    interrupted = True   # stop the command as Ctrl-C would, then report
                    self._send({"id": next(self._ids), "op": "cancel", "target": request_id})
                    continue
                if message is None:
                    raise errors.AgentDied(self.dead_reason)
                if "chunk" in message:
                    if on_chunk:
                        on_chunk(*message["chunk"])
                    continue
                if "error" in message:
                    kind, text = message["error"]
                    raise getattr(errors, kind, errors.LabError)(text)
                if interrupted:
                    raise KeyboardInterrupt
                return message["value"]
        finally:
            self._replies.pending.pop(request_id, None)

    @property
    def command_environment(self) -> dict[str, str]:
        """The environment the agent gives every command in the lab host."""
        return self.ready["environment"]

    def init_pid(self) -> int:
        """The sandbox's PID 1, as this process sees it (for nsenter --target)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        if not children:
            raise errors.AgentDied(self.dead_reason or "the lab host has no init process")
        return int(children[0])

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
                message = self.connection.recv()
                waiting = self.pending.get(message["id"])
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
            waiting.put(None)


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
