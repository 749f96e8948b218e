"""A trace over a big transfer keeps headers and the first bytes of each frame, not whole
frames: its memory is bounded in bytes on both sides, whatever the traffic."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

BOUND_MIB = 128   # agent's peak, and the notebook side's growth (frames kept: ~10 MiB at most)


def test_a_traced_one_and_a_half_gigabyte_transfer_keeps_both_sides_under_the_bound():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_trace_memory.py"), "1500"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["bytes received"] == 1500 << 20
    assert figures["packets in trace"] > 0
    assert figures["agent peak MiB"] < BOUND_MIB, figures
    assert figures["notebook peak MiB growth"] < BOUND_MIB, figures
