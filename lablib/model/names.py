"""How lablib names namespaces and kernel settings, the same on both sides of the pipe.

A command's `ns` is the lab host itself (None, "" or "host"), a namespace the learner
made ("c1", as `ip netns list` shows it), or a host of the simulated outside world
("world:client"). Sysctls are named as sysctl(8) names them ("net.ipv4.ip_forward").
"""
from __future__ import annotations

from pathlib import Path

HOST = "host"                 # the lab host's own (root) network namespace
WORLD_PREFIX = "world:"       # namespaces of the simulated outside world


def canonical_ns(ns: str | None) -> str:
    """The namespace's name in snapshots and tables: "host" for the lab host itself."""
    return HOST if ns in (None, "", HOST) else ns


def world_ns(host: str) -> str:
    """The `ns=` of the outside world's host `host` ("client" -> "world:client")."""
    return WORLD_PREFIX + host


def is_world(ns: str | None) -> bool:
    """Whether `ns` is a host of the simulated outside world."""
    return ns is not None and ns.startswith(WORLD_PREFIX)


def world_host(ns: str) -> str:
    """The outside world's host that `ns` names ("world:client" -> "client")."""
    return ns.removeprefix(WORLD_PREFIX)


_SYSCTL_SEPARATORS = str.maketrans("./", "/.")


def sysctl_path(key: str) -> Path:
    """The /proc/sys file of a sysctl key, as sysctl(8) finds it (a "/" in an interface
    name, as in net.ipv4.conf.eth0/100.forwarding, is a "." in the file's name)."""
    return Path("/proc/sys") / key.translate(_SYSCTL_SEPARATORS)
