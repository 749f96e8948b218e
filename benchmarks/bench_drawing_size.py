"""Figures for drawings that fit (issue 13): each drawing's natural size, and the scale it
is shown at in JupyterLab's output column (~530 px) and in the docked live panel (~630 px).

    .venv/bin/python benchmarks/bench_drawing_size.py

Drawings are scaled down to fit, never up; text at a scale under ~0.6 gets hard to read.
"""
from __future__ import annotations

import re

from lablib import Lab

COLUMN, PANEL = 530, 630   # px, at a 1366 px wide window with the panel docked


def size(drawing) -> tuple[float, float]:
    svg = drawing.pipe(format="svg").decode()
    width, height = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    return float(width) * 4 / 3, float(height) * 4 / 3   # pt -> px


def report(name: str, drawing) -> None:
    width, height = size(drawing)
    print(f"{name:38s} {width:6.0f} x {height:5.0f} px   column scale {min(1, COLUMN / width):.2f}"
          f"   panel scale {min(1, PANEL / width):.2f}")


def main() -> None:
    with Lab(quiet=True) as lab:
        report("the lab host alone", lab.topology(changes=False))
        lab.build(["c1", "c2", "c3"], nat=True)
        report("3 containers on a bridge", lab.topology(changes=False))
        with lab.trace("icmp") as t:
            lab.sh("ping -c1 198.51.100.10", ns="c1")
        report("trace graph, c1 to example.com", t.graph())
        lab.build([f"d{n}" for n in range(1, 21)], bridge="br1", subnet="10.1.0.0/24")
        report("23 containers on two bridges", lab.topology(changes=False))
        lab.sh("for n in c1 c2 c3; do ip netns delete $n; done")
        report("after deleting 3 (ghosts)", lab.topology())


if __name__ == "__main__":
    main()
