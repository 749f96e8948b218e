"""How a lab host maps user ids: who starts it decides what its root can do."""
from __future__ import annotations

import os
import pwd
from pathlib import Path

from . import tools


def own_subordinate_range(path: str) -> tuple[int, int] | None:
    """(first id, count) of this user's first range in /etc/subuid or /etc/subgid."""
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        for line in Path(path).read_text().splitlines():
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[0] in (user, str(os.getuid())) and int(fields[2]) > 0:
                return int(fields[1]), int(fields[2])
    except (OSError, ValueError):
        pass
    return None


def has_subordinate_ids() -> bool:
    """Whether this user has /etc/subuid and /etc/subgid ranges and newuidmap to use them."""
    if not (tools.find("newuidmap") and tools.find("newgidmap")):
        return False
    user = pwd.getpwuid(os.getuid()).pw_name
    keys = (f"{user}:", f"{os.getuid()}:")
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            if not any(line.startswith(keys) for line in Path(path).read_text().splitlines()):
                return False
        except OSError:
            return False
    return True


def id_mapping() -> str:
    """How the sandbox maps user ids: "range" (root), "subids" or "single".

    With "range" or "subids" every program can switch to its own user as on a real
    host (tcpdump, dnsmasq); with "single" the lab host has only root, and shims help.
    """
    if os.getuid() == 0:
        return "range"
    return "subids" if has_subordinate_ids() else "single"


# A lab started by root maps its root to an unprivileged range of the machine, as rootless
# container engines do, so that root in the lab is nobody special outside it. Root's own
# /etc/subuid and /etc/subgid ranges are used when it has them (as podman does); else this
# fixed range, which systemd's UID allocation leaves unused (between the container ranges
# 524288–1879048191 and the unsafe 2^31 and above) and which no user owns.
LAB_RANGE = (0x70000000, 65536)


def _subordinate_range(path: str, names: tuple[str, ...]) -> tuple[int, int] | None:
    try:
        for line in Path(path).read_text().splitlines():
            fields = line.strip().split(":")
            if len(fields) == 3 and fields[0] in names and int(fields[2]) >= 65536:
                return int(fields[1]), 65536
    except (OSError, ValueError):
        pass
    return None


def root_lab_range() -> tuple[int, int]:
    """(first id, count) that a lab started by root maps its ids 0.. to, uids and gids alike."""
    uids = _subordinate_range("/etc/subuid", ("root", "0"))
    gids = _subordinate_range("/etc/subgid", ("root", "0"))
    if uids and gids and uids == gids:
        return uids
    return LAB_RANGE


def unreadable_for_others(paths: list[str]) -> str | None:
    """The first of `paths` (or a folder above it) that a user who is neither its owner
    nor in its group cannot read, or None. That is what root's lab range is."""
    for path in paths:
        current = Path(path)
        for folder in [*reversed(current.parents), current]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                break
            need = 0o005 if folder.is_dir() else 0o004
            if mode & need != need:
                return str(folder)
    return None
