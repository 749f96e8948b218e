"""Figures for the agent protocol (model/protocol.py). Prints numbers; asserts nothing.

    .venv/bin/python benchmarks/bench_protocol.py [--runs N]

What one command costs on the wire (CPU time to pickle and unpickle a Run and its
CommandOutput, as multiprocessing's Connection does), and the round trip through the
pipe alone (lab.namespaces(): no process started) next to one that runs a command.
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import time
import timeit
from multiprocessing.reduction import ForkingPickler

from figures import median_ms, timed

from lablib import Lab
from lablib.model.protocol import CommandOutput, Run


def wire_microseconds() -> float:
    messages = [(5, Run("true", "c1", timeout=30.0)),
                (5, CommandOutput(b"", b"", 0, 0, None, None, 0.002))]

    def trip() -> None:
        for message in messages:
            pickle.loads(ForkingPickler.dumps(message))

    return 1e6 * min(timeit.repeat(trip, number=2000, repeat=25, timer=time.process_time)) / 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    runs = parser.parse_args().runs
    print(f"Run + CommandOutput, pickled and unpickled   {wire_microseconds():5.1f} us CPU")
    with Lab(quiet=True) as lab:
        lab.sh("true")
        pipe = timed(lab.namespaces, runs)
        command = timed(lambda: lab.sh("true"), runs)
    print(f"lab.namespaces(): the pipe alone       {1e6 * statistics.median(pipe):7.0f} us (min {1e6 * min(pipe):.0f})")
    print(f"lab.sh('true'): the pipe and bash     {median_ms(command)}")


if __name__ == "__main__":
    main()
