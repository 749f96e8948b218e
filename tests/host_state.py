"""The real machine's network state, to prove a lab leaves it exactly as it found it.

`capture()` reads what a lab could conceivably leave behind — network namespaces,
links, addresses, routes, iptables and nft rules, /etc/resolv.conf, /run/netns and
processes — normalised so that only real changes differ (counters and lifetimes are
dropped). Firewall state needs root to read; an ordinary user compares the rest.

    python tests/host_state.py save FILE      # before
    python tests/host_state.py compare FILE   # after: prints differences, exits 1 if any
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              env=dict(os.environ, PATH=SYSTEM_PATH))
    except FileNotFoundError:
        return f"({argv[0]} not installed)"
    return done.stdout if done.returncode == 0 else f"(unreadable: {done.stderr.strip()[:200]})"


def _without(pattern: str, text: str) -> str:
    return re.sub(pattern, "", text)


def processes(exclude_tree_of: int | None = None) -> list[str]:
    """User-space processes as 'pid command', leaving out `exclude_tree_of` and its descendants."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError):
            continue
        if command:   # kernel threads have no command line
            table[int(entry)] = (ppid, command)
    excluded = set()
    if exclude_tree_of:
        excluded.add(exclude_tree_of)
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _) in table.items():
                if ppid in excluded and pid not in excluded:
                    excluded.add(pid)
                    grew = True
        # and its ancestors: the shell or CI runner that started it
        pid = exclude_tree_of
        while pid in table:
            pid = table[pid][0]
            excluded.add(pid)
    return sorted(f"{pid} {command}" for pid, (_, command) in table.items() if pid not in excluded)


def capture(exclude_tree_of: int | None = None) -> dict[str, object]:
    try:
        run_netns = sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        run_netns = []
    state = {
        "ip netns list": _run("ip", "netns", "list"),
        "/run/netns": run_netns,
        "links": _without(r"link-netnsid \d+", _run("ip", "-o", "link", "show")),
        "addresses": _without(r"\s+valid_lft \S+ preferred_lft \S+", _run("ip", "-o", "address", "show")),
        "routes": _without(r" expires \S+", _run("ip", "route", "show", "table", "all")),
        "/etc/resolv.conf": Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else "",
        "processes": processes(exclude_tree_of),
    }
    if os.geteuid() == 0:
        state["iptables-save"] = _without(r"(?m)^#.*\n|\[\d+:\d+\]", _run("iptables-save"))
        state["nft list ruleset"] = _without(r"counter packets \d+ bytes \d+", _run("nft", "list", "ruleset"))
    return state


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for key in before:
        if before[key] != after.get(key):
            if isinstance(before[key], list):
                gone = sorted(set(before[key]) - set(after.get(key, [])))
                new = sorted(set(after.get(key, [])) - set(before[key]))
                found.append(f"{key}: new {new}, gone {gone}")
            else:
                found.append(f"{key} changed:\n--- before\n{before[key]}\n--- after\n{after.get(key)}")
    return found


def main() -> int:
    action, path = sys.argv[1], Path(sys.argv[2])
    if action == "save":
        path.write_text(json.dumps(capture(exclude_tree_of=os.getpid())))
        return 0
    found = differences(json.loads(path.read_text()), capture(exclude_tree_of=os.getpid()))
    for difference in found:
        print("residue on the machine:", difference)
    if not found:
        print("the machine's network, firewall, resolv.conf and processes are as they were")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
