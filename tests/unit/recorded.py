"""Recorded observations from real labs, for the unit tests: what the agent returned.

Each fixture in fixtures/ is the raw dict the agent's `trace_stop` returned (every
captured frame, every `nft monitor trace` line, the snapshot taken at the end), or a
full snapshot, written as JSON: frames in base64, dataclasses as dicts. Loading them
needs nothing but lablib's model: no lab host, no sandbox, no user namespaces.

Record them again (on a machine that runs labs) with
    .venv/bin/python tests/unit/recorded.py
"""
from __future__ import annotations

import base64
import dataclasses
import json
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES.parent.parent.parent))   # lablib from this checkout

from lablib.model.protocol import StartTrace, StopTrace, TraceRecording  # noqa: E402
from lablib.model.state import (  # noqa: E402
    Connection,
    FdbEntry,
    Link,
    Namespace,
    Neighbour,
    Route,
    Rule,
    Snapshot,
    Socket,
)

PARTS = {"links": Link, "routes": Route, "neighbours": Neighbour, "fdb": FdbEntry, "rules": Rule,
         "connections": Connection, "sockets": Socket}


# -- reading ------------------------------------------------------------------------------

def snapshot_from(data: dict) -> Snapshot:
    namespaces = {}
    for name, ns in data["namespaces"].items():
        parts = {key: [cls(**item) for item in ns[key]] for key, cls in PARTS.items()}
        for link in parts["links"]:
            link.peer = tuple(link.peer) if link.peer else None
        namespaces[name] = Namespace(name, sysctls=ns["sysctls"], **parts)
    return Snapshot(namespaces, data["taken"], data["seconds"])


def load_snapshot(name: str) -> Snapshot:
    return snapshot_from(json.loads((FIXTURES / f"{name}.json").read_text()))


def load_trace(name: str) -> TraceRecording:
    """A recorded trace, as the agent returned it."""
    data = json.loads((FIXTURES / f"trace-{name}.json").read_text())
    return TraceRecording([(stamp, ns, interface, pkttype, base64.b64decode(frame))
                           for stamp, ns, interface, pkttype, frame in data["frames"]],
                          data["netfilter"], snapshot_from(data["snapshot"]))


# -- recording (on a machine that runs labs) ------------------------------------------------

def _snapshot_json(snapshot: Snapshot) -> dict:
    return dataclasses.asdict(snapshot)


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(FIXTURES.parent.parent.parent)}")


def _record_trace(lab, name: str, expression: str, command: str, ns: str | None) -> None:
    trace = lab.sandbox.call(StartTrace(expression, True))
    lab.sh(command, ns=ns, check=False)
    recording = lab.sandbox.call(StopTrace(trace))
    _write(FIXTURES / f"trace-{name}.json", {
        "recorded": f"{command!r} in {ns or 'host'}, traced with {expression!r}",
        "frames": [(stamp, ns_, interface, pkttype, base64.b64encode(frame).decode())
                   for stamp, ns_, interface, pkttype, frame in recording.frames],
        "netfilter": recording.netfilter, "dropped": 0,
        "snapshot": _snapshot_json(recording.snapshot)})


def record() -> None:
    from lablib import Lab
    from lablib.inside.kernel_state import KINDS

    with Lab(quiet=True) as lab:
        lab.build(["c1"], nat=True)
        _record_trace(lab, "masquerade-ping", "icmp", "ping -c1 198.51.100.10", "c1")
    with Lab(quiet=True) as lab:
        lab.build(["web"], servers={"web": 80}, publish={8080: ("web", 80)})
        _record_trace(lab, "dnat-from-client", "tcp", "curl -s -o /dev/null 203.0.113.10:8080", "world:client")
    with Lab(quiet=True) as lab:
        lab.build(["c1"], forward=True)
        _record_trace(lab, "reply-dies-at-router", "icmp", "ping -c1 -W1 198.51.100.10", "c1")
    with Lab(quiet=True) as lab:
        lab.build(["c1", "c2"])
        lab.sh("iptables -P FORWARD DROP")
        _record_trace(lab, "forward-drop", "icmp", "ping -c1 -W1 10.0.0.3", "c1")
    with Lab(quiet=True) as lab:
        lab.build(["c1", "c2"], nat=True)
        lab.sh("ip link set lo down", ns="c2")
        lab.sh("curl -s -o /dev/null http://198.51.100.10/", ns="c1")
        lab.spawn("python3 -m http.server 8000", ns="c1", ready_port=8000)
        _write(FIXTURES / "snapshot-nat.json", _snapshot_json(lab.snapshot(kinds=set(KINDS), world=True)))


if __name__ == "__main__":
    record()
