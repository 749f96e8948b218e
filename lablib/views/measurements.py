"""Measured paths as a table and a plot: throughput, latency and CPU per transferred GB.

Pure functions of the numbers iperf3 and the round-trip client reported; no lab host
needed. The text and HTML views print each figure with its unit and no padding, so two
runs of the same notebook differ only in the figures themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Measurement:
    """One path, measured: what iperf3 and the round-trip client reported."""
    path: str
    gbit_per_s: float          # TCP throughput the receiver saw
    latency_us: float          # median TCP request/response round trip
    cpu_s_per_gb: float        # machine CPU time spent per GB moved (all CPUs)
    retransmits: int


def from_iperf3(path: str, report: dict, latency: dict, cpu_seconds: float) -> Measurement:
    """A Measurement from `iperf3 -J`'s report, the round-trip client's JSON and the CPU
    seconds the machine spent during the transfer."""
    end = report["end"]
    received = end["sum_received"]
    gigabytes = received["bytes"] / 1e9
    return Measurement(path, received["bits_per_second"] / 1e9, latency["median_us"],
                       cpu_seconds / gigabytes if gigabytes else float("nan"),
                       int(end.get("sum_sent", {}).get("retransmits", 0)))


def _figures(m: Measurement) -> dict[str, str]:
    return {"path": m.path, "throughput": f"{m.gbit_per_s:.2f} Gbit/s", "latency": f"{m.latency_us:.0f} µs",
            "CPU per GB": f"{m.cpu_s_per_gb:.2f} CPU-s/GB", "retransmits": f"{m.retransmits} retr"}


class Measurements:
    """The paths measured in one run, in the order they were measured."""

    def __init__(self, rows: list[Measurement]):
        self.rows = rows

    @property
    def frame(self) -> pd.DataFrame:
        """The figures as numbers, one row per path (for your own analysis)."""
        return pd.DataFrame([m.__dict__ for m in self.rows]).set_index("path")

    def ranking(self, by: str = "gbit_per_s") -> list[str]:
        """Path names from best to worst by `by` (throughput: highest first; latency and
        CPU per GB: lowest first)."""
        return list(self.frame[by].sort_values(ascending=by != "gbit_per_s").index)

    def ratio(self, slower: str, faster: str, by: str = "gbit_per_s") -> float:
        """How many times `faster` beats `slower` on `by`."""
        numbers = self.frame[by]
        if by == "gbit_per_s":
            return float(numbers[faster] / numbers[slower])
        return float(numbers[slower] / numbers[faster])

    def plot(self):
        """Throughput, latency and CPU per GB side by side, one bar per path."""
        import matplotlib.pyplot as plt

        frame = self.frame
        figure, axes = plt.subplots(1, 3, figsize=(11, 0.45 * len(frame) + 1.4), sharey=True)
        for axis, (column, title) in zip(axes, [("gbit_per_s", "throughput (Gbit/s, more is better)"),
                                                 ("latency_us", "round trip (µs, less is better)"),
                                                 ("cpu_s_per_gb", "CPU per GB (s, less is better)")]):
            axis.barh(frame.index, frame[column], color="#4c78a8")
            axis.set_title(title, fontsize=9)
            axis.tick_params(labelsize=8)
        axes[0].invert_yaxis()
        figure.tight_layout()
        plt.close(figure)    # shown once, by the notebook, as the cell's value
        return figure

    def _repr_html_(self) -> str:
        return pd.DataFrame([_figures(m) for m in self.rows]).to_html(index=False)

    def __repr__(self) -> str:
        return "\n".join(", ".join(_figures(m).values()) for m in self.rows)
