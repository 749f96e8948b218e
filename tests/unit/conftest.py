"""The offline unit tests: pure functions of lablib's model (tables, drawings, check
diagnosis, trace assembly) on hand-built snapshots and recorded observations.

They start no lab host and no process at all, so they pass where user namespaces are
off: every way of starting a process fails the test that tries (see `no_processes`),
and a run of only these tests fails if any module that can start a sandbox
(lablib.inside, lablib.notebook) was imported.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent

SANDBOX_MODULES = ("lablib.inside", "lablib.notebook", "lablib.cli")


class ProcessStarted(AssertionError):
    pass


def _refuse(*args, **kwargs):
    raise ProcessStarted(f"a unit test tried to start a process: {args[:1]!r}")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    """Starting any process — subprocess, fork, spawn, exec — fails the test."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve",
                 "execvp", "execvpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse)


def pytest_sessionfinish(session, exitstatus):
    """Run on their own, the unit tests must not have imported the sandbox's side."""
    items = getattr(session, "items", [])
    if not items or any(UNIT not in Path(item.fspath).parents for item in items):
        return
    loaded = sorted(name for name in sys.modules if name.startswith(SANDBOX_MODULES))
    if loaded:
        print(f"\nunit tests imported modules that can start a sandbox: {', '.join(loaded)}", file=sys.stderr)
        session.exitstatus = 1
