"""The real machine's network state, to prove a lab leaves it exactly as it found it.

`capture()` reads what a lab could conceivably leave behind — network namespaces,
links, addresses, routes, iptables and nft rules, /etc/resolv.conf, /run/netns and
the processes of labs — normalised so that only real changes differ (counters and lifetimes are
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


LAB_COMMANDS = ("lablib", "unshare", "nsenter", "dnsmasq", "http.server", "tcpdump", "iperf3", "ip netns")


def processes() -> list[str]:
    """Processes a lab could have left behind, as 'pid command'.

    A lab's processes live in namespaces of their own, or are the unshare/nsenter that
    made them; anything else on the machine (a shell, a cron job) is not a lab's residue
    and may come and go during a run.
    """
    own = {kind: os.stat(f"/proc/self/ns/{kind}").st_ino for kind in ("user", "net", "mnt", "pid")}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            namespaced = any(os.stat(f"/proc/{entry}/ns/{kind}").st_ino != inode for kind, inode in own.items())
        except (OSError, ValueError):
            continue
        if command and (namespaced or any(word in command for word in LAB_COMMANDS)):
            found.append(f"{entry} {command}")
    return sorted(found)


def capture() -> dict[str, object]:
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
        "processes": processes(),
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
        path.write_text(json.dumps(capture()))
        return 0
    found = differences(json.loads(path.read_text()), capture())
    for difference in found:
        print("residue on the machine:", difference)
    if not found:
        print("the machine's network, firewall, resolv.conf and processes are as they were")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
