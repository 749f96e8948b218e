"""What the notebook and the agent say to each other: every operation, and its reply.

The notebook (notebook/sandbox.py) and the agent inside the sandbox (inside/agent.py)
hold the two ends of two pipes (multiprocessing Connections; each message is pickled):

    notebook -> agent   (request_id, request)     request: one of OPERATIONS below
    agent -> notebook   (request_id, Chunk)       zero or more, while a Run streams
                        (request_id, reply)       the request's reply type, or
                        (request_id, Failure)     an error: encode_error() -> rebuild_error()
    agent -> notebook   (0, Ready | Failure)      once, when the lab host is up (or not)

Each operation is a dataclass whose fields are its arguments; `Request[R]` says that
it is answered with an `R`, so `sandbox.call(Run(...))` is a `CommandOutput` to an
editor as to a reader. The agent handles each in the method named in its docstring.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from . import errors
from .errors import LabError
from .state import Snapshot

R = TypeVar("R")


class Request(Generic[R]):
    """An operation the agent performs; it replies with an R."""


# -- operations (notebook -> agent) -------------------------------------------------

@dataclass(frozen=True)
class Run(Request["CommandOutput"]):
    """Run `command` with bash in namespace `ns` (None: the lab host) to its end; stream
    its output as Chunks when `stream`; with `together`, stderr goes into stdout, one
    stream in the order written, as a terminal shows them. Agent.run."""
    command: str
    ns: str | None = None
    timeout: float = 30.0
    stream: bool = False
    together: bool = False


@dataclass(frozen=True)
class Cancel(Request[None]):
    """Stop the Run with request id `target` as Ctrl-C would. Agent.cancel."""
    target: int


@dataclass(frozen=True)
class Spawn(Request["ProcessStatus"]):
    """Start a background process; with `ready_port` or `ready_text`, reply once it
    listens on that port or has printed that text (or after `timeout`). Agent.spawn."""
    command: str
    ns: str | None = None
    name: str | None = None
    ready_port: int | None = None
    ready_text: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class ListProcesses(Request["list[ProcessStatus]"]):
    """Every background process of the lab host. Agent.list_processes."""


@dataclass(frozen=True)
class CheckProcess(Request["ProcessStatus"]):
    """How the background process `pid` is doing, and its log. Agent.check_process."""
    pid: int


@dataclass(frozen=True)
class StopProcess(Request["ProcessStatus"]):
    """Stop the background process `pid` (SIGTERM, then SIGKILL). Agent.stop_process."""
    pid: int


@dataclass(frozen=True)
class ListNamespaces(Request["list[str]"]):
    """The learner's named network namespaces, as `ip netns list` shows them.
    Agent.list_namespaces."""


@dataclass(frozen=True)
class ReadLeftover(Request[bytes]):
    """What background jobs of finished commands have printed (the newest 256 KiB).
    Agent.read_leftover."""


@dataclass(frozen=True)
class ReadSnapshot(Request[Snapshot]):
    """The kernel state of every namespace (or those named): `kinds` picks from
    inside/kernel_state.KINDS (None: all); `world` adds the outside world.
    Agent.read_snapshot."""
    kinds: tuple[str, ...] | None = None
    namespaces: tuple[str, ...] | None = None
    world: bool = False


@dataclass(frozen=True)
class StartTrace(Request[int]):
    """Capture `filter` (tcpdump syntax) on every interface of every namespace, and
    trace netfilter when `netfilter`; replies the trace's id. Agent.start_trace."""
    filter: str
    netfilter: bool = True


@dataclass(frozen=True)
class StopTrace(Request["TraceRecording"]):
    """End the trace `trace` and reply what it recorded. Agent.stop_trace."""
    trace: int


@dataclass(frozen=True)
class StartDocker(Request[dict]):
    """Start dockerd (and its containerd) in the lab host with these programs, once; reply:
    what `docker version` and `docker info` say (inside/docker.py)."""
    programs: dict


@dataclass(frozen=True)
class AttachContainers(Request["list[str]"]):
    """Name Docker's running containers' network namespaces (`ip netns attach`); reply: their names."""


OPERATIONS: tuple[type[Request], ...] = (Run, Cancel, Spawn, ListProcesses, CheckProcess, StopProcess,
                                         ListNamespaces, ReadLeftover, ReadSnapshot, StartTrace, StopTrace,
                                         StartDocker, AttachContainers)


# -- replies (agent -> notebook) ------------------------------------------------------

@dataclass
class CommandOutput:
    """How a Run ended, and everything it printed (up to 1 MiB a stream)."""
    stdout: bytes
    stderr: bytes
    dropped: int                    # bytes printed past the limit, not kept
    exit_code: int
    stopped: str | None             # "timeout", "stdin", "interrupted", or None: it ended by itself
    waiting_program: str | None     # when stopped for "stdin": the program that waited
    duration: float                 # seconds
    limit: str | None = None        # "processes" or "memory": a limit of the lab host stopped it


@dataclass
class ProcessStatus:
    """A background process: what it is, whether it still runs, and its log."""
    pid: int
    name: str
    command: str
    ns: str | None
    exit_code: int | None           # None while it runs
    log: bytes                      # everything it printed (the newest 256 KiB)
    ready: bool | None = None       # for a Spawn that waited: whether it became ready


@dataclass
class TraceRecording:
    """What a trace saw: every frame on every interface, each namespace's netfilter
    trace lines, and the interfaces and routes as they were when it stopped."""
    frames: list[tuple[int, str, str, int, bytes]]   # (time ns, namespace, ifname, pkttype, frame)
    netfilter: dict[str, list[str]]                  # namespace -> `nft monitor trace` lines
    snapshot: Snapshot
    snaplen: int = 65535        # how much of each frame was kept (headers and the payload's start)
    dropped: int = 0            # frames seen but not kept: past the trace's frame or byte limit


# -- messages that are not replies ------------------------------------------------------

@dataclass
class Chunk:
    """Output of a streaming Run as it comes: `stream` is "stdout" or "stderr"."""
    stream: str
    data: bytes


@dataclass
class Ready:
    """The agent's first message: the lab host is up."""
    full_id_map: bool               # many user ids mapped: programs can switch users
    environment: dict[str, str]     # what every command starts with
    servers: dict[str, int]         # the outside world's servers: name -> pid
    notes: list[str] = field(default_factory=list)   # what fell back while starting, for the learner


@dataclass
class Failure:
    """An error on its way across the pipe (encode_error makes one, rebuild_error raises
    it again on the other side)."""
    kind: str                       # the class name, from model/errors.py
    message: str
    fields: dict[str, object] = field(default_factory=dict)   # its attributes: a CommandFailed's result


def encode_error(error: BaseException) -> Failure:
    """`error` as it crosses the pipe. A lablib error keeps its class, message and
    attributes; any other exception is a bug in lablib, sent as a LabError that says so."""
    if isinstance(error, LabError):
        fields = {name: value for name, value in vars(error).items() if not name.startswith("_")}
        return Failure(type(error).__name__, str(error), fields)
    return Failure(LabError.__name__, f"lablib agent failed: {error!r}")


def rebuild_error(failure: Failure) -> LabError:
    """The error `encode_error` sent, as its own class from model/errors.py (a LabError
    when this side does not know the class)."""
    kind = getattr(errors, failure.kind, None)
    if not (isinstance(kind, type) and issubclass(kind, LabError)):
        return LabError(failure.message)
    return kind(failure.message, **failure.fields)
