"""The agent: the process inside the sandbox that the notebook talks to.

Started by notebook/sandbox.py as `unshare ... python -m lablib.inside.agent`, it is PID 1 of the lab
host's PID namespace. PID 1 prepares the filesystem, then forks the worker that does
the real work, and itself only reaps orphans: when the worker ends — because the
notebook closed the pipe, or its kernel died and the kernel closed it — PID 1 exits,
and Linux kills everything left in the sandbox. Nothing can outlive the lab.

What the notebook may ask, and what each answer is, is model/protocol.py; each
operation is handled by the Agent method named there.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..model.errors import LabError, SandboxUnavailable
from ..model.protocol import (
    AttachContainers,
    Cancel,
    CheckProcess,
    Chunk,
    CommandOutput,
    ListNamespaces,
    ListProcesses,
    ProcessStatus,
    ReadLeftover,
    ReadSnapshot,
    Ready,
    Request,
    Run,
    Spawn,
    StartDocker,
    StartTrace,
    StopProcess,
    StopTrace,
    TraceRecording,
    encode_error,
)
from ..model.state import Snapshot
from . import labhost, linux

if TYPE_CHECKING:
    from .capture import Trace

Emit = Callable[[str, bytes], None]
MAX_REQUESTS = 256    # handled at once: far more than a notebook makes


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
        self.traces: dict[int, Trace] = {}
        self.workers = ThreadPoolExecutor(MAX_REQUESTS, thread_name_prefix="request")
        self.docker = None      # inside/docker.py's Docker, once the notebook asks for it

    def send(self, request_id: int, message: object) -> None:
        with self._send_lock:
            self.outbox.send((request_id, message))

    def serve(self, ready: Ready) -> None:
        self.send(0, ready)
        # Reading kernel state needs pyroute2 (~0.1 s to import): do it now, off the clock.
        threading.Thread(target=__import__, args=("pyroute2",), daemon=True).start()
        while True:
            try:
                request_id, request = self.inbox.recv()
            except (EOFError, OSError):
                os._exit(0)   # the notebook is gone: PID 1 follows, and the sandbox with it
            # Each request in a thread of its own (a Cancel must get through while its Run
            # runs). Threads are reused, which saves starting one (~50 us) per request: so a
            # handler never leaves its thread in another namespace (linux.in_fresh_thread).
            try:
                self.workers.submit(self.handle, request_id, request)
            except RuntimeError:   # no thread to spare: the lab is at its process limit
                from .runner import process_limit_error
                self.send(request_id, encode_error(process_limit_error()))

    def handle(self, request_id: int, request: Request) -> None:
        def emit(stream: str, data: bytes) -> None:
            self.send(request_id, Chunk(stream, data))

        try:
            reply = HANDLERS[type(request)](self, request_id, request, emit)
        except Exception as error:
            if isinstance(error, BlockingIOError) or "can't start new thread" in str(error):
                from .runner import process_limit_error  # no process or thread to spare
                error = process_limit_error()
            elif not isinstance(error, LabError):
                traceback.print_exc()   # a bug in lablib: the learner gets one line, the log the details
            reply = encode_error(error)
        try:
            self.send(request_id, reply)
        except (OSError, ValueError):
            os._exit(0)

    # -- operations (model/protocol.py) ---------------------------------------------------
    def run(self, request_id: int, request: Run, emit: Emit) -> CommandOutput:
        output = self.runner.run(request_id, request.command, request.ns, request.timeout,
                                 emit if request.stream else None, request.together)
        self._follow_docker()
        return output

    def cancel(self, request_id: int, request: Cancel, emit: Emit) -> None:
        self.runner.cancel(request.target)

    def spawn(self, request_id: int, request: Spawn, emit: Emit) -> ProcessStatus:
        background = self.runner.spawn(request.command, request.ns, request.name)
        self._follow_docker()
        if request.ready_port is not None or request.ready_text is not None:
            return self.runner.wait_ready(background.process.pid, request.ready_port,
                                          request.ready_text, request.timeout)
        return background.status()

    def list_processes(self, request_id: int, request: ListProcesses, emit: Emit) -> list[ProcessStatus]:
        return [background.status() for background in self.runner.background.values()]

    def check_process(self, request_id: int, request: CheckProcess, emit: Emit) -> ProcessStatus:
        return self.runner.find(request.pid).status()

    def stop_process(self, request_id: int, request: StopProcess, emit: Emit) -> ProcessStatus:
        return self.runner.find(request.pid).stop()

    def list_namespaces(self, request_id: int, request: ListNamespaces, emit: Emit) -> list[str]:
        from .runner import netns_names
        self._follow_docker()
        return netns_names()

    def read_leftover(self, request_id: int, request: ReadLeftover, emit: Emit) -> bytes:
        return bytes(self.runner.leftover)

    def read_snapshot(self, request_id: int, request: ReadSnapshot, emit: Emit) -> Snapshot:
        from . import kernel_state
        self._follow_docker()   # a container may have ended on its own since the last command
        return kernel_state.read(frozenset(request.kinds or kernel_state.KINDS),
                                 list(request.namespaces) if request.namespaces is not None else None,
                                 request.world)

    def start_trace(self, request_id: int, request: StartTrace, emit: Emit) -> int:
        from .capture import Trace
        from .kernel_state import namespace_paths
        self.traces[request_id] = Trace(self.runner, namespace_paths(world=True), request.filter,
                                        request.netfilter)
        return request_id

    def stop_trace(self, request_id: int, request: StopTrace, emit: Emit) -> TraceRecording:
        from . import kernel_state
        trace = self.traces.pop(request.trace)
        trace.stop()
        # Interfaces and addresses as they are now, to place each hop in the drawing.
        snapshot = kernel_state.read(frozenset({"links", "routes", "sysctls"}), world=True)
        from .capture import SNAPLEN
        return TraceRecording(trace.frames, trace.netfilter, snapshot, SNAPLEN, trace.dropped)

    def start_docker(self, request_id: int, request: StartDocker, emit: Emit) -> dict:
        from .docker import Docker
        if self.docker is None:
            self.docker = Docker(self.runner, request.programs)
        return self.docker.start()

    def attach_containers(self, request_id: int, request: AttachContainers, emit: Emit) -> list[str]:
        return self.docker.attach() if self.docker else []

    def _follow_docker(self) -> None:
        """Any command may have started or removed a container: show its namespace by name."""
        if self.docker is not None:
            self.docker.attach()


# Which Agent method handles each operation of the protocol.
HANDLERS: dict[type[Request], Callable[..., object]] = {
    Run: Agent.run,
    Cancel: Agent.cancel,
    Spawn: Agent.spawn,
    ListProcesses: Agent.list_processes,
    CheckProcess: Agent.check_process,
    StopProcess: Agent.stop_process,
    ListNamespaces: Agent.list_namespaces,
    ReadLeftover: Agent.read_leftover,
    ReadSnapshot: Agent.read_snapshot,
    StartTrace: Agent.start_trace,
    StopTrace: Agent.stop_trace,
    StartDocker: Agent.start_docker,
    AttachContainers: Agent.attach_containers,
}


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
        outbox.send((0, encode_error(SandboxUnavailable(f"the lab host could not be set up: {error}"))))
        os._exit(1)
    agent.serve(Ready(full_id_map=full_map, environment=agent.runner.env, servers=servers, notes=notes))


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


def contain_then_exec(keep: list[str], owner: int, size: int, argv: list[str]) -> None:
    """For a lab started by root: as the machine's root, in a mount namespace of this lab's
    own, make the machine read-only and the private places the lab's range owns; then
    make the lab's user namespace, wait (blocked on stdin, not spinning) until the
    notebook side has mapped it to that range, become its root, and exec `argv`. The
    mounts made here are locked in the lab: its root cannot unmount them."""
    try:
        labhost.contain(keep, owner, size)
        linux.unshare(linux.CLONE_NEWUSER)
    except OSError as error:
        sys.exit(f"the lab host's filesystem could not be prepared: {error}")
    if os.read(0, 3) != b"go\n":
        os._exit(1)   # the notebook side is gone (or could not map): nothing to start
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Still capable here (no exec since unshare): switch to the lab's root, which the map
    # has made the range's first id; exec then grants the capabilities within the lab only.
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.execv(argv[0], argv)


def set_limits(processes: int | None, memory: int | None) -> None:
    """Limits for everything in the lab host, which its root cannot raise (that needs
    CAP_SYS_RESOURCE on the machine). Linux counts RLIMIT_NPROC per user and user
    namespace, so this lab's processes count against this lab's limit only."""
    for kind, wanted in ((resource.RLIMIT_NPROC, processes), (resource.RLIMIT_DATA, memory)):
        if wanted:
            hard = resource.getrlimit(kind)[1]   # the machine's own limit for this user caps it
            value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(kind, (value, value))


def main() -> None:
    parser = argparse.ArgumentParser(description="lablib's agent (started by lablib, not by hand)")
    parser.add_argument("--inbox", type=int)
    parser.add_argument("--outbox", type=int)
    parser.add_argument("--keep", action="append", default=[],
                        help="a path the lab needs from the machine (its Python, lablib), kept visible read-only")
    parser.add_argument("--place-size", type=int, default=labhost.PLACE_SIZE)
    parser.add_argument("--contained", action="store_true", help="contain() was done by --outer")
    parser.add_argument("--outer", type=int, metavar="OWNER",
                        help="run as the machine's root: contain() for OWNER, then exec the rest")
    parser.add_argument("--max-processes", type=int, help="RLIMIT_NPROC of the lab (its own count)")
    parser.add_argument("--max-memory", type=int, help="RLIMIT_DATA of each process of the lab")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.outer is not None:
        contain_then_exec(args.keep, args.outer, args.place_size, args.rest[1:] if args.rest[:1] == ["--"] else args.rest)
    if os.getpid() != 1 or args.inbox is None:
        sys.exit("lablib.inside.agent runs as PID 1 of a lab host's sandbox; use lablib.Lab() instead")
    set_limits(args.max_processes, args.max_memory)
    try:
        notes = labhost.prepare_filesystem(args.keep, args.contained, args.place_size)
    except OSError as error:
        Connection(args.outbox, readable=False).send(
            (0, encode_error(SandboxUnavailable(f"the lab host's filesystem could not be prepared: {error}"))))
        os._exit(1)
    pid = os.fork()
    if pid == 0:
        worker(args.inbox, args.outbox, notes)
    os.close(args.inbox)
    os.close(args.outbox)
    be_init(pid)


if __name__ == "__main__":
    main()
