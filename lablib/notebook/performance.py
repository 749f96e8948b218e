"""`lab.measure(paths)`: throughput, latency and CPU cost of network paths in the lab host.

    from lablib import measure
    results = lab.measure([measure.path("bridge", client="c1", server="c2", target="10.0.0.3")])
    results; results.plot()

For each path: a one-shot `iperf3 -s` where the server runs and `iperf3 -c ... -J` where
the client runs, for `seconds`; then a TCP request/response client through the same
address and port (inside/roundtrip.py) for latency; CPU is the machine's busy time during
the transfer (/proc/stat), so anything else running on the machine counts too.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..model.errors import LabError
from ..views.measurements import Measurement, Measurements, from_iperf3

IPERF_PORT = 5201


@dataclass(frozen=True)
class path:
    """A path to measure: traffic from `client` to `target` ("ADDRESS" or "ADDRESS:PORT"),
    answered by a server in namespace `server` ("NS" or "NS:PORT"; "host" is the lab host)."""
    name: str
    client: str
    server: str
    target: str

    def endpoints(self) -> tuple[str | None, int, str, int]:
        server_ns, server_port = _split_port(self.server)
        address, target_port = _split_port(self.target)
        port = server_port or IPERF_PORT
        return (None if server_ns == "host" else server_ns), port, address, target_port or port


def _split_port(text: str) -> tuple[str, int | None]:
    """"c2:5201" -> ("c2", 5201); "world:web" and "10.0.0.3" have no port."""
    name, _, port = text.rpartition(":")
    return (name, int(port)) if port.isdigit() else (text, None)


def _busy_seconds() -> float:
    """CPU time every CPU of the machine has spent busy since boot."""
    fields = [int(value) for value in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]      # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure_one(lab, route: path, seconds: float, round_trips: int) -> Measurement:
    server_ns, port, address, target_port = route.endpoints()
    client_ns = None if route.client == "host" else route.client
    server = lab.spawn(f"iperf3 -s -1 -p {port}", ns=server_ns, name=f"iperf3 server ({route.name})",
                       ready_port=port)
    before = _busy_seconds()
    # iperf3 counts whole seconds (-t 0 would mean "forever").
    done = lab.sh(f"iperf3 -c {address} -p {target_port} -t {max(1, round(seconds))} -J", ns=client_ns, check=False,
                  timeout=seconds + 15)
    cpu = _busy_seconds() - before
    server.stop()
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = {"error": done.stderr.strip() or done.stdout.strip()}
    if "error" in report:
        raise LabError(f"measuring '{route.name}' failed: iperf3 says {report['error']!r}; "
                       f"check that {route.client} reaches {route.target} (lab.check with expect.reaches)")
    echo = lab.spawn(f"python3 -m lablib.inside.roundtrip serve {port}", ns=server_ns,
                     name=f"round-trip server ({route.name})", ready_port=port)
    try:
        latency = json.loads(lab.sh(f"python3 -m lablib.inside.roundtrip ask {address} {target_port} {round_trips}",
                                    ns=client_ns, timeout=30).stdout)
    finally:
        echo.stop()
    return from_iperf3(route.name, report, latency, cpu)


def measure(lab, paths: list[path], *, seconds: float = 1.0, round_trips: int = 500) -> Measurements:
    if not 1 <= seconds <= 30:
        raise LabError(f"seconds={seconds:g}: measure each path for 1 to 30 seconds")
    if not paths or not all(isinstance(p, path) for p in paths):
        raise LabError("lab.measure() takes a list of measure.path(name, client=, server=, target=)")
    return Measurements([measure_one(lab, route, seconds, round_trips) for route in paths])
