"""What every benchmark here shares: timing a call, and printing a median with its spread."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # lablib from this checkout


def timed(action: Callable[[], object], runs: int) -> list[float]:
    """Seconds each of `runs` calls of `action` took."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def median_ms(samples: list[float]) -> str:
    return (f"{1000 * statistics.median(samples):7.1f} ms "
            f"(min {1000 * min(samples):.1f}, max {1000 * max(samples):.1f})")
