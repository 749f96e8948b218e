"""Figures for the lab host (issue: the lab host sandbox). Prints medians; asserts nothing.

    .venv/bin/python benchmarks/bench_lab.py [--runs N]

Targets: a lab ready in < 150 ms (including its outside world), close() < 100 ms, a
command round trip within 1.5x of a plain subprocess.run(["ip", "netns", "exec", ...]),
100 containers built in < 0.5 s (Mininet needs ~1.8 s for 100 hosts on this machine).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from figures import median_ms, timed

from lablib import Lab

# Runs inside the lab host: the same command without lablib, from a Python process
# that is already there, as a learner's own script would run it.
PLAIN_SUBPROCESS = """
import json, subprocess, sys, time
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", "c1", "true"], check=True)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs

    starts, closes = [], []
    for _ in range(runs):
        started = time.perf_counter()
        lab = Lab(quiet=True)
        starts.append(time.perf_counter() - started)
        started = time.perf_counter()
        lab.close()
        closes.append(time.perf_counter() - started)
    print(f"Lab() ready, with its outside world   {median_ms(starts)}   target < 150 ms")
    print(f"lab.close()                            {median_ms(closes)}   target < 100 ms")

    with Lab(quiet=True) as lab:
        lab.build(["c1"])
        lab.sh("true", ns="c1")   # warm the page cache
        ours = timed(lambda: lab.sh("true", ns="c1"), runs * 10)
        host = timed(lambda: lab.sh("true"), runs * 10)
        plain = json.loads(lab.sh(f"python3 -c '{PLAIN_SUBPROCESS}' {runs * 10}").stdout)
        ratio = statistics.median(ours) / statistics.median(plain)
        print(f"lab.sh('true', ns='c1') round trip    {median_ms(ours)}")
        print(f"lab.sh('true') in the host             {median_ms(host)}")
        print(f"plain subprocess ip netns exec c1 true {median_ms(plain)}")
        print(f"round trip / plain subprocess          {ratio:7.2f} x       target <= 1.5 x")

    for count in (10, 100, 200):
        samples = []
        for _ in range(max(3, runs // 4)):
            with Lab(quiet=True) as lab:
                started = time.perf_counter()
                lab.build(count, subnet="10.0.0.0/16")
                samples.append(time.perf_counter() - started)
        target = "   target < 500 ms (Mininet ~1.8 s)" if count == 100 else ""
        print(f"build {count:3d} containers on a bridge     {median_ms(samples)}{target}")


if __name__ == "__main__":
    main()
