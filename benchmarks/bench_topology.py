"""Figures for seeing the network (issue: topology drawings and tables). Prints medians.

    .venv/bin/python benchmarks/bench_topology.py [--runs N]

Snapshot + render for 2, 20 and 100 namespaces, and what the live view adds to a
command: targets under 150 ms for a lab of 10 namespaces, under 0.6 s for 100.
"""
from __future__ import annotations

import argparse
import statistics

from figures import median_ms, timed

from lablib import Lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    for count in (2, 20, 100):
        with Lab(quiet=True) as lab:
            lab.build(count, subnet="10.0.0.0/16")
            lab.snapshot()   # pyroute2 imported, caches warm
            full = timed(lambda: lab.snapshot(), runs)
            drawn = timed(lambda: lab.topology(changes=False).pipe(format="svg"), runs)
            print(f"{count:3d} namespaces: full snapshot {median_ms(full)}")
            print(f"{count:3d} namespaces: snapshot + render {median_ms(drawn)}")
    for count, target in ((10, 150), (100, 600)):
        with Lab(quiet=True) as lab:
            lab.build(count, subnet="10.0.0.0/16")
            plain = timed(lambda: lab.sh("true"), runs * 3)
            lab.live(dock=False)
            unchanged = timed(lambda: lab.sh("true"), runs * 3)
            redraw = "ip link add tmp0 type bridge; ip link del tmp0; ip link set lo down; ip link set lo up"
            changed = timed(lambda: lab.sh(redraw), runs)   # noqa: B023 (called right here)
            lab.live_view.stop()
            changed_plain = timed(lambda: lab.sh(redraw), runs)   # noqa: B023
            added = statistics.median(unchanged) - statistics.median(plain)
            added_redraw = statistics.median(changed) - statistics.median(changed_plain)
            print(f"live view, {count:3d} namespaces: adds {1000 * added:6.1f} ms to a command that changes nothing, "
                  f"{1000 * added_redraw:6.1f} ms to one that changes the drawing   target < {target} ms")


if __name__ == "__main__":
    main()
