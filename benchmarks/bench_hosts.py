"""Figures for several hosts in one lab (notebook 09). Prints medians.

    .venv/bin/python benchmarks/bench_hosts.py [--runs N]

Building 2 and 3 hosts with 2 containers each (with and without a VXLAN overlay), a
snapshot and drawing of them, and a traced ping across the overlay (capture + decode).
"""
from __future__ import annotations

import argparse

from figures import median_ms, timed

from lablib import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with Lab(quiet=True) as lab:
        for count in (2, 3):
            for vxlan in (None, 42):
                samples = []
                for _ in range(runs):
                    lab.reset()   # not timed: a fresh lab host for each build
                    samples += timed(lambda c=count, v=vxlan: lab.build_hosts(c, subnet="10.0.0.0/24", span=True,
                                                                             vxlan=v), 1)
                label = f"{count} hosts, {2 * count} containers" + (", VXLAN" if vxlan else "")
                print(f"build {label}: {median_ms(samples)}")
        lab.reset()
        lab.build_hosts(3, subnet="10.0.0.0/24", vxlan=42)
        lab.sh("ping -c1 10.0.0.6", ns="c1")
        drawn = timed(lambda: lab.topology(changes=False).pipe(format="svg"), runs)
        print(f"3 hosts, 6 containers: snapshot + drawing {median_ms(drawn)}")

        def traced() -> None:
            with lab.trace("icmp or udp port 4789") as t:
                lab.sh("ping -c1 10.0.0.6", ns="c1")
            t.table()
        print(f"traced ping over VXLAN, host1 to host3, table ready: {median_ms(timed(traced, runs))}")


if __name__ == "__main__":
    main()
