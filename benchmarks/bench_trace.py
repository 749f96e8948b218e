"""Figures for packet traces (issue: packet traces). Prints medians; asserts nothing.

    .venv/bin/python benchmarks/bench_trace.py [--runs N]

Time from the end of the traced command to a ready table and graph (rendered to SVG),
for a 4-hop ping between two containers and for ~100 TCP packets (ten short HTTP
requests: veth offloads segmentation, so one big download is only a few large frames); the target
for the ping is under 0.5 s.
"""
from __future__ import annotations

import argparse
import statistics
import time

from figures import median_ms

from lablib import Lab


def after_command(lab: Lab, command: str, ns: str, expression: str) -> tuple[float, int]:
    with lab.trace(expression) as t:
        lab.sh(command, ns=ns)
        ended = time.perf_counter()
    t.table()
    t.graph().pipe(format="svg")
    return time.perf_counter() - ended, len(t.packets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with Lab(quiet=True) as lab:
        lab.build(["c1", "c2"])
        lab.sh("mkdir -p /tmp/bench-web && echo hello > /tmp/bench-web/hello")
        lab.spawn("python3 -m http.server 80 --directory /tmp/bench-web", ns="c2", ready_port=80)
        cases = [("4-hop ping between two containers", "ping -c1 10.0.0.3", "c1", "icmp", " target < 500 ms"),
                 ("ten HTTP requests (~100 TCP packets)", "for i in $(seq 10); do curl -s -o /dev/null 10.0.0.3/hello; done",
                  "c1", "tcp port 80", "")]
        for title, command, ns, expression, target in cases:
            samples, sizes = [], []
            for _ in range(runs):
                seconds, packets = after_command(lab, command, ns, expression)
                samples.append(seconds)
                sizes.append(packets)
            print(f"{title}: {statistics.median(sizes):.0f} packets, table + graph ready "
                  f"{median_ms(samples)} after the command{target}")


if __name__ == "__main__":
    main()
