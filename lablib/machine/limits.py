"""Per-lab limits: how many processes and how much memory one lab host may use.

Where systemd runs with cgroup v2 and has the pids and memory controllers delegated
(root, or a user's own systemd instance), each lab host runs in a transient scope of its
own (`systemd-run --scope -p TasksMax=N -p MemoryMax=M`): the whole lab shares its
limits, and systemd removes the scope when the lab ends, however it ends. Elsewhere
(containers, machines without systemd, cgroup v1) rlimits apply: RLIMIT_NPROC — which
Linux (>= 5.14) counts per user namespace, so per lab — caps the lab's processes, and
RLIMIT_DATA caps each of its processes' memory.
"""
from __future__ import annotations

import functools
import itertools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import tools

_scopes = itertools.count(1)
DEFAULT_PROCESSES = 512
DEFAULT_MEMORY = 1 << 30
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory(value: int | str) -> int:
    """Bytes from 1073741824, "1G", "512M", "1.5GiB"."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"max_memory must be a number of bytes or a size like '1G', not {value!r}")
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", value, re.IGNORECASE)
        if not match:
            raise ValueError(f"max_memory {value!r} is not a size; write it like '512M' or '2G'")
        number = int(float(match.group(1)) * UNITS[match.group(2).upper()])
    if number < 64 << 20:
        raise ValueError(f"max_memory {value!r} is too small for a lab host; give it at least 64M")
    return number


def size(number: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if number >= UNITS[unit] and number % UNITS[unit] == 0:
            return f"{number // UNITS[unit]} {unit}iB"
    return f"{number} bytes"


def _controllers(cgroup: Path) -> set[str]:
    try:
        return set((cgroup / "cgroup.subtree_control").read_text().split())
    except OSError:
        return set()


def _own_cgroup() -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None


@functools.cache
def systemd_scope() -> list[str] | None:
    """The `systemd-run` prefix that puts a lab in a limited scope, if this machine has one."""
    run = tools.find("systemd-run")
    if not run or not Path("/run/systemd/system").is_dir() or not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return None   # no systemd, or cgroup v1 / hybrid: the limits would not be enforced
    wanted = {"pids", "memory"}
    if os.geteuid() == 0:
        # Root's transient scopes go in system.slice: its children must get both controllers.
        parent = Path("/sys/fs/cgroup/system.slice")
        if not wanted <= _controllers(parent if parent.is_dir() else Path("/sys/fs/cgroup")):
            return None
        prefix = [run, "--scope", "--quiet", "--collect"]
    else:
        own = _own_cgroup() or ""
        manager = re.match(r"(.*/user@\d+\.service)", own)
        if not manager or not wanted <= _controllers(Path("/sys/fs/cgroup" + manager.group(1))):
            return None   # no delegated user slice
        prefix = [run, "--user", "--scope", "--quiet", "--collect"]
    try:
        probe = subprocess.run([*prefix, "-p", "TasksMax=16", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None


@dataclass(frozen=True)
class Limits:
    """What one lab host may use, and how this machine enforces it."""
    processes: int = DEFAULT_PROCESSES
    memory: int = DEFAULT_MEMORY

    @classmethod
    def of(cls, max_processes: int | None = None, max_memory: int | str | None = None) -> "Limits":
        """The limits asked for; unset ones come from LABLIB_MAX_PROCESSES and
        LABLIB_MAX_MEMORY (a workshop's defaults), else 512 processes and 1 GiB."""
        if max_processes is None:
            from_env = os.environ.get("LABLIB_MAX_PROCESSES", "").strip()
            if from_env and not from_env.isdigit():
                raise ValueError(f"LABLIB_MAX_PROCESSES must be a whole number, not {from_env!r}")
            max_processes = int(from_env) if from_env else None
        if max_memory is None:
            max_memory = os.environ.get("LABLIB_MAX_MEMORY", "").strip() or None
        processes = DEFAULT_PROCESSES if max_processes is None else max_processes
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 32:
            raise ValueError(f"max_processes must be a whole number of at least 32 (a lab host itself "
                             f"runs about 10), not {max_processes!r}")
        return cls(processes, DEFAULT_MEMORY if max_memory is None else parse_memory(max_memory))

    @property
    def by_cgroup(self) -> bool:
        return systemd_scope() is not None

    def launch_prefix(self) -> list[str]:
        """What goes in front of the sandbox's command line (a systemd scope), if anything."""
        prefix = systemd_scope()
        if prefix is None:
            return []
        # A recognisable name: `systemctl list-units 'lablib-*'` shows the running labs.
        unit = f"lablib-{os.getpid()}-{next(_scopes)}"
        return [*prefix, f"--unit={unit}", "-p", f"TasksMax={self.processes}", "-p", f"MemoryMax={self.memory}",
                "-p", "MemorySwapMax=0", "--"]

    def summary(self) -> str:
        where = "in all" if self.by_cgroup else "per process"
        return f"at most {self.processes} processes, {size(self.memory)} of memory {where}"

    def how(self) -> str:
        if self.by_cgroup:
            return "a systemd scope (cgroup v2) per lab host: pids.max and memory.max for the whole lab"
        return ("rlimits: RLIMIT_NPROC per lab host (counted per user namespace) and RLIMIT_DATA per "
                "process (no cgroup v2 with delegated pids and memory controllers here)")
