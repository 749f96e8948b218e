"""The agent: the process inside the sandbox that the notebook talks to.

Started by notebook/sandbox.py as `unshare ... python -m lablib.inside.agent`, it is PID 1 of the lab
host's PID namespace. PID 1 prepares the filesystem, then forks the worker that does
the real work, and itself only reaps orphans: when the worker ends — because the
notebook closed the pipe, or its kernel died and the kernel closed it — PID 1 exits,
and Linux kills everything left in the sandbox. Nothing can outlive the lab.

Protocol (multiprocessing Connection objects over two pipes, one message a dict):
  notebook -> agent   {"id": N, "op": NAME, ...arguments}
  agent -> notebook   {"id": N, "chunk": (stream, bytes)}        zero or more
                      {"id": N, "value": ...} | {"id": N, "error": (class name, message)}
  agent -> notebook   {"id": 0, "value": {...}} once, when the lab host is ready
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable

from ..model.errors import LabError
from . import labhost, linux


def full_id_map() -> bool:
    """Whether programs can switch users here (many ids mapped, setgroups allowed)."""
    fields = Path("/proc/self/uid_map").read_text().split()
    many = len(fields) > 3 or (len(fields) == 3 and int(fields[2]) > 1)
    return many and Path("/proc/self/setgroups").read_text().strip() == "allow"


class Agent:
    """Serves the notebook's requests; runs in the worker process."""

    def __init__(self, inbox: Connection, outbox: Connection):
        from .runner import Runner

        self.inbox, self.outbox = inbox, outbox
        self._send_lock = threading.Lock()
        self.runner = Runner(labhost.command_environment(os.path.dirname(sys.executable)))
        self.ops: dict[str, Callable[[dict, Callable], object]] = {
            "run": self.op_run,
            "cancel": lambda request, emit: self.runner.cancel(request["target"]),
            "spawn": self.op_spawn,
            "process": self.op_process,
            "namespaces": self.op_namespaces,
            "leftover": lambda request, emit: bytes(self.runner.leftover),
            "snapshot": self.op_snapshot,
            "trace_start": self.op_trace_start,
            "trace_stop": self.op_trace_stop,
            "docker_start": self.op_docker_start,
            "docker_attach": lambda request, emit: self.docker.attach() if self.docker else [],
        }
        self.traces: dict[int, object] = {}
        self.docker = None      # inside/docker.py's Docker, once the notebook asks for it

    def send(self, message: dict) -> None:
        with self._send_lock:
            self.outbox.send(message)

    def serve(self, ready: dict) -> None:
        self.send({"id": 0, "value": ready})
        # Reading kernel state needs pyroute2 (~0.1 s to import): do it now, off the clock.
        threading.Thread(target=__import__, args=("pyroute2",), daemon=True).start()
        while True:
            try:
                request = self.inbox.recv()
            except (EOFError, OSError):
                os._exit(0)   # the notebook is gone: PID 1 follows, and the sandbox with it
            threading.Thread(target=self.handle, args=(request,), daemon=True).start()

    def handle(self, request: dict) -> None:
        request_id = request["id"]

        def emit(stream: str, data: bytes) -> None:
            self.send({"id": request_id, "chunk": (stream, data)})

        try:
            value = self.ops[request["op"]](request, emit)
            reply = {"id": request_id, "value": value}
        except LabError as error:
            reply = {"id": request_id, "error": (type(error).__name__, str(error))}
        except Exception as error:  # a bug in lablib: say so plainly, keep the details
            traceback.print_exc()
            reply = {"id": request_id, "error": ("LabError", f"lablib agent failed: {error!r}")}
        try:
            self.send(reply)
        except (OSError, ValueError):
            os._exit(0)

    # -- operations -------------------------------------------------------------------
    def op_run(self, request: dict, emit: Callable) -> dict:
        result = self.runner.run(request["id"], request["command"], request.get("ns"),
                                 request.get("timeout", 30.0),
                                 emit if request.get("stream") else None)
        self._follow_docker()
        return result

    def op_spawn(self, request: dict, emit: Callable) -> dict:
        background = self.runner.spawn(request["command"], request.get("ns"), request.get("name"))
        self._follow_docker()
        if request.get("ready_port") is not None or request.get("ready_text") is not None:
            return self.runner.wait_ready(background.process.pid, request.get("ready_port"),
                                          request.get("ready_text"), request.get("timeout", 10.0))
        return background.status()

    def op_process(self, request: dict, emit: Callable) -> dict | list:
        action = request["action"]
        if action == "list":
            return [b.status() for b in self.runner.background.values()]
        background = self.runner.find(request["pid"])
        return background.stop() if action == "stop" else background.status()

    def op_snapshot(self, request: dict, emit: Callable):
        from . import kernel_state as snapshot
        self._follow_docker()   # a container may have ended on its own since the last command
        return snapshot.read(frozenset(request.get("kinds") or snapshot.KINDS),
                             request.get("namespaces"), request.get("world", False))

    def op_trace_start(self, request: dict, emit: Callable) -> int:
        from .capture import Trace
        from .kernel_state import namespace_paths
        trace = Trace(self.runner, namespace_paths(world=True), request["filter"], request["netfilter"])
        self.traces[request["id"]] = trace
        return request["id"]

    def op_trace_stop(self, request: dict, emit: Callable) -> dict:
        from . import kernel_state as snapshot
        trace = self.traces.pop(request["trace"])
        raw = trace.stop()
        # Interfaces and addresses as they are now, to place each hop in the drawing.
        raw["snapshot"] = snapshot.read(frozenset({"links", "routes", "sysctls"}), world=True)
        return raw

    def op_docker_start(self, request: dict, emit: Callable) -> dict:
        from .docker import Docker
        if self.docker is None:
            self.docker = Docker(self.runner, request["programs"])
        return self.docker.start()

    def _follow_docker(self) -> None:
        """Any command may have started or removed a container: show its namespace by name."""
        if self.docker is not None:
            self.docker.attach()

    def op_namespaces(self, request: dict, emit: Callable) -> list[str]:
        self._follow_docker()
        return self._namespaces()

    def _namespaces(self) -> list[str]:
        from .runner import netns_names
        return netns_names()


def worker(inbox_fd: int, outbox_fd: int, notes: list[str]) -> None:
    from . import outside_world as world

    linux.set_process_name("lab-agent")
    inbox = Connection(inbox_fd, writable=False)
    outbox = Connection(outbox_fd, readable=False)
    # The agent's own complaints go to a log inside the lab host, not the notebook.
    log = os.open(labhost.RUN / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    full_map = full_id_map()
    try:
        labhost.identity()
        labhost.install_shims(full_map)
        labhost.set_defaults()
        agent = Agent(inbox, outbox)
        servers = world.build(agent.runner)
    except Exception as error:
        traceback.print_exc()
        outbox.send({"id": 0, "error": ("SandboxUnavailable", f"the lab host could not be set up: {error}")})
        os._exit(1)
    agent.serve({"full_id_map": full_map, "notes": notes, "servers": servers,
                 "environment": agent.runner.env})


def be_init(worker_pid: int) -> None:
    """PID 1: reap every orphan; when the worker ends, end the sandbox."""
    linux.set_process_name("lab-init")
    signal.signal(signal.SIGTERM, lambda *_: os.kill(worker_pid, signal.SIGKILL))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == worker_pid:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main() -> None:
    parser = argparse.ArgumentParser(description="lablib's agent (started by lablib, not by hand)")
    parser.add_argument("--inbox", type=int, required=True)
    parser.add_argument("--outbox", type=int, required=True)
    args = parser.parse_args()
    if os.getpid() != 1:
        sys.exit("lablib.inside.agent runs as PID 1 of a lab host's sandbox; use lablib.Lab() instead")
    try:
        notes = labhost.prepare_filesystem()
    except OSError as error:
        Connection(args.outbox, readable=False).send(
            {"id": 0, "error": ("SandboxUnavailable", f"the lab host's filesystem could not be prepared: {error}")})
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        worker(args.inbox, args.outbox, notes)
    os.close(args.inbox)
    os.close(args.outbox)
    be_init(pid)


if __name__ == "__main__":
    main()
