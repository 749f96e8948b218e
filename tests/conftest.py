"""Shared fixtures: every test gets a real, fresh lab host on the real kernel."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lablib import Lab  # noqa: E402

# Marks this run's lab processes, so the residue checks find exactly them (host_state.py).
os.environ.setdefault("LABKIT_TEST_RUN", f"pytest-{os.getpid()}")
# The seed the committed notebooks' fault hunts were run with (see tests/run_all.py).
os.environ.setdefault("LABLIB_FAULT_SEED", "course-tests")


@pytest.fixture
def lab():
    with Lab(quiet=True) as fresh:
        yield fresh


@pytest.fixture
def two_containers(lab):
    """c1 (10.0.0.2) and c2 (10.0.0.3) on br0 (10.0.0.1), built with real commands."""
    lab.build(["c1", "c2"])
    return lab


def is_root() -> bool:
    return os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    if not is_root():
        skip = pytest.mark.skip(reason="needs real root on the machine")
        for item in items:
            if "root_only" in item.keywords:
                item.add_marker(skip)
