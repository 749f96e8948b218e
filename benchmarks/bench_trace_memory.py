"""Memory of a trace over a big transfer: 1.5 GB sent from c1 to c2 while `lab.trace()`
watches every namespace. Prints the agent's and this (notebook) process's peak memory.

    .venv/bin/python benchmarks/bench_trace_memory.py [MEGABYTES]

A trace keeps at most capture.FRAME_LIMIT frames of capture.SNAPLEN bytes (headers and
the first bytes of payload), so both peaks stay far below the transfer's size.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lablib import Lab  # noqa: E402

SINK = "python3 -c \"import socket; s=socket.create_server(('0.0.0.0', 9000)); c=s.accept()[0]\n" \
       "n=0\nwhile (b := c.recv(1 << 20)): n += len(b)\nprint(n, flush=True)\""
SEND = "python3 -c \"import socket; c=socket.create_connection(('10.0.0.3', 9000)); z=bytes(1 << 20)\n" \
       "for _ in range({megabytes}): c.sendall(z)\nc.close()\""


def peak_kib(pid: int | str = "self") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def measure(megabytes: int) -> dict:
    with Lab(quiet=True) as lab:
        lab.build(["c1", "c2"])
        sink = lab.spawn(SINK, ns="c2", ready_port=9000)
        agent = int(Path(f"/proc/{lab.sandbox.init_pid()}/task/{lab.sandbox.init_pid()}/children").read_text().split()[0])
        with lab.trace("icmp") as warm_up:   # lablib's own imports (pandas, dpkt) count before
            lab.sh("ping -c 1 10.0.0.3", ns="c1")
        warm_up.table()
        notebook_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        with lab.trace("tcp port 9000", netfilter=False) as t:
            lab.sh(SEND.format(megabytes=megabytes), ns="c1", timeout=600)
        seconds = time.monotonic() - started
        received = int(sink.log().split()[0]) if sink.log().strip() else 0
        return {"megabytes sent": megabytes, "bytes received": received, "seconds": round(seconds, 1),
                "packets in trace": len(t.packets), "rows": len(t.table()),
                "agent peak MiB": round(peak_kib(agent) / 1024, 1),
                "notebook peak MiB growth": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                   - notebook_before) / 1024, 1)}


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1500)))
