"""How a lab host maps user ids: who starts it decides what its root can do."""
from __future__ import annotations

import os
import pwd
from pathlib import Path

from . import tools


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
    """How the sandbox maps user ids: "identity" (root), "subids" or "single".

    With "identity" or "subids" every program can switch to its own user as on a real
    host (tcpdump, dnsmasq); with "single" the lab host has only root, and shims help.
    """
    if os.getuid() == 0:
        return "identity"
    return "subids" if has_subordinate_ids() else "single"
