"""Figures for reading the kernel's state and for one idle lab host's memory. Prints medians.

    .venv/bin/python benchmarks/bench_snapshot.py [--runs N]

A full snapshot (links, routes, neighbours, fdb, sysctls, rules, connections, sockets)
of 100 namespaces, each kind on its own, links only, and snapshot + SVG for 20
namespaces; then the resident memory of one idle lab host: every process of it (PSS,
from /proc/PID/smaps_rollup, so pages shared between them are counted once).
Targets: full snapshot of 100 namespaces < 500 ms, links only < 150 ms, snapshot + SVG
of 20 namespaces < 60 ms, an idle lab host < 25 MiB. Beside each median: the CPU time the
lab host's processes and this (the notebook's) process and its `dot` spent per call: what a busy
machine inflates less than the wall-clock time.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from figures import median_ms, timed

from lablib import Lab
from lablib.inside.kernel_state import KINDS


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system time the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process's CPU time, with its finished children's (graphviz's `dot`)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def figure(lab, label: str, action, runs: int, target: str = "") -> None:
    """Print the median time of `action` and the lab host's CPU time per call."""
    pids = descendants(lab.sandbox.process.pid)
    before, here = cpu_seconds(pids), own_cpu_seconds()
    samples = timed(action, runs)
    cpu, here = (cpu_seconds(pids) - before) / runs, (own_cpu_seconds() - here) / runs
    print(f"{label:38s} {median_ms(samples)}   CPU: lab host {1000 * cpu:5.0f} ms, "
          f"notebook {1000 * here:5.0f} ms   {target}")


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def process_name(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    return f"{comm} ({os.path.basename(argv[0].decode())})"


def memory() -> None:
    with Lab(quiet=True) as lab:
        time.sleep(1.0)   # idle: the agent's background import of pyroute2 has finished
        total = 0
        for pid in descendants(lab.sandbox.process.pid):
            kib = pss_kib(pid)
            total += kib
            print(f"    {process_name(pid):40s} {kib / 1024:6.1f} MiB")
        print(f"idle lab host, all its processes: {total / 1024:.1f} MiB PSS   target < 25 MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with Lab(quiet=True) as lab:
        lab.build(100, subnet="10.0.0.0/16")
        lab.snapshot(kinds=set(KINDS))   # pyroute2 imported, caches warm
        figure(lab, "100 namespaces: full snapshot", lambda: lab.snapshot(kinds=set(KINDS)), runs, "target < 500 ms")
        figure(lab, "100 namespaces: links only", lambda: lab.snapshot(kinds={"links"}), runs, "target < 150 ms")
        for kind in sorted(KINDS - {"links"}):
            figure(lab, f"100 namespaces: links + {kind}", lambda: lab.snapshot(kinds={"links", kind}), runs)  # noqa: B023
    with Lab(quiet=True) as lab:
        lab.build(20, subnet="10.0.0.0/16")
        lab.snapshot()
        figure(lab, " 20 namespaces: snapshot + SVG", lambda: lab.topology(changes=False).pipe(format="svg"), runs,
               "target < 60 ms")
    memory()


if __name__ == "__main__":
    main()
