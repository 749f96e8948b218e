"""The system tools the labs use, and which Debian/Ubuntu package brings each one."""
from __future__ import annotations

import difflib
import functools
import os
import re
import shutil
from pathlib import Path

PACKAGE_LIST = Path(__file__).with_name("system-packages.txt")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def packages() -> dict[str, str]:
    """Map each tool (command name) to the package that provides it."""
    tools: dict[str, str] = {}
    for line in PACKAGE_LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, *commands = line.split()
            tools.update((command, package) for command in commands)
    return tools


def find(tool: str) -> str | None:
    """Where `tool` is installed, looking in the system directories too."""
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":" + SYSTEM_PATH)


def missing() -> dict[str, str]:
    """Tools the labs need that are not installed: tool -> package."""
    return {tool: package for tool, package in packages().items()
            if tool != "python3" and find(tool) is None}


def install_hint(tools: dict[str, str]) -> str:
    wanted = " ".join(sorted(set(tools.values())))
    return f"sudo apt-get install {wanted}   (or run ./labkit setup)"


_NOT_FOUND = re.compile(r"(?:^|\n)(?:bash: )?(?:line \d+: )?([\w.+-]+): command not found")


def command_not_found_hint(stderr: str) -> str | None:
    """A one-line hint for the first `command not found` in a shell's stderr, or None."""
    match = _NOT_FOUND.search(stderr)
    if not match:
        return None
    name = match.group(1)
    package = packages().get(name)
    if package:
        return f"'{name}' is not installed on this machine: sudo apt-get install {package}"
    close = difflib.get_close_matches(name, list(packages()) + _EVERYDAY_COMMANDS, n=1)
    if close:
        return f"'{name}' is not a command here; did you mean '{close[0]}'?"
    return f"'{name}' is not a command here; check the spelling, or install the tool that provides it"


# Commands learners type that every Debian host has, for "did you mean" suggestions.
_EVERYDAY_COMMANDS = ["echo", "cat", "grep", "sed", "awk", "mkdir", "tee", "ls", "rm",
                      "sleep", "kill", "python3", "timeout", "head", "tail", "sudo",
                      "modprobe", "route", "arp", "netstat", "ifconfig"]
