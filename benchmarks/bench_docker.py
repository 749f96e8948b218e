"""Figures for real Docker in a lab host (issue 15). Prints medians; asserts nothing.

    .venv/bin/python benchmarks/bench_docker.py [--runs N]

Prints the time from `lab.docker()` to a published container that answers the outside
client (split into dockerd + image, and `docker run -p`), and the memory of Docker's
processes as PSS (proportional set size: shared pages split between their users, so the
figures add up). The issue measured 0.5-0.74 s to a published container, and RSS of
dockerd ~80 MB, containerd ~40 MB, a shim ~14 MB.
"""
from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict
from pathlib import Path

from figures import median_ms, timed

from lablib import Lab

PUBLISH = "docker run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /var/www"
PROGRAMS = ("dockerd", "containerd", "containerd-shim-runc-v2", "docker-proxy", "httpd")


def pss_by_program(lab: Lab) -> dict[str, list[int]]:
    """PSS in KiB of each Docker process of `lab`'s sandbox, by program name."""
    sandbox_userns = os.stat(f"/proc/{lab.sandbox.init_pid()}/ns/user").st_ino
    found: dict[str, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/user").st_ino != sandbox_userns:
                continue
            argv0 = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode()
            name = os.path.basename(argv0)
            if name not in PROGRAMS:
                continue
            rollup = Path(f"/proc/{entry}/smaps_rollup").read_text().splitlines()
        except (OSError, ValueError, IndexError):
            continue
        pss = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
        found[name].append(pss)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    starts, publishes, totals, memory = [], [], [], defaultdict(list)
    for _ in range(runs):
        with Lab(quiet=True) as lab:
            started = timed(lab.docker, 1)[0]
            published = timed(lambda: lab.sh(PUBLISH), 1)[0]
            reach = lab.sh("curl -sS -m 5 -o /dev/null -w '%{http_code}' http://203.0.113.10:8080/", ns="world:client")
            assert reach.stdout == "200", reach
            starts.append(started)
            publishes.append(published)
            totals.append(started + published)
            for name, values in pss_by_program(lab).items():
                memory[name].append(sum(values) / 1024)
                memory[f"{name} (processes)"].append(len(values))
    print(f"lab.docker() (dockerd + containerd + image):  {median_ms(starts)}")
    print(f"docker run -d -p 8080:80 (until it returns): {median_ms(publishes)}")
    print(f"lab.docker() to a published container:      {median_ms(totals)}")
    print("memory (PSS, median over runs):")
    total = 0.0
    for name in PROGRAMS:
        if name in memory:
            mib = statistics.median(memory[name])
            total += mib
            count = int(statistics.median(memory[f"{name} (processes)"]))
            print(f"  {name:26s} {mib:6.1f} MiB  ({count} process{'es' if count > 1 else ''})")
    print(f"  {'all of Docker':26s} {total:6.1f} MiB")


if __name__ == "__main__":
    main()
