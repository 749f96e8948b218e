"""Claims made from the simulated outside world (ns="world:client", "world:web").

`checks.run` reads a snapshot of the lab host only, so `expect.reaches("world:client",
...)` finds no namespace "world:client" and always answers ❌ ("does not exist yet"),
and `expect.not_reaches` from there always answers ✅. These two claims read the
outside world too when their source is one of its hosts, and otherwise behave exactly
like `expect.reaches` and `expect.not_reaches`:

    from lablib import outside
    lab.check("published port", outside.reaches("world:client", "http://203.0.113.10:8080/"))
"""
from __future__ import annotations

from . import checks
from .state import WORLD_PREFIX


def _with_world(claim: checks.reaches, lab, snapshot):
    if claim.src.startswith(WORLD_PREFIX) and claim.src not in snapshot.namespaces:
        return lab.snapshot(kinds={"links", *checks.reaches.needs}, world=True)
    return snapshot


class reaches(checks.reaches):
    """From `src` (an outside host too), a target answers: "IP", "IP:PORT" or a URL."""

    def judge(self, lab, snapshot):
        return super().judge(lab, _with_world(self, lab, snapshot))


class not_reaches(checks.not_reaches):
    """From `src` (an outside host too), the target must *not* answer."""

    def judge(self, lab, snapshot):
        return super().judge(lab, _with_world(self, lab, snapshot))
