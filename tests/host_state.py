"""The real machine's network state, to prove a lab leaves it exactly as it found it.

`capture()` reads what a lab could conceivably leave behind — network namespaces,
links, addresses, routes, iptables and nft rules, /etc/resolv.conf, /run/netns, the
machine's mounts and cgroups (Docker in a lab host must leave neither), and this test
run's lab processes — normalised so that only real changes differ (counters and lifetimes are
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


RUN_MARK = "LABKIT_TEST_RUN"   # set for a whole test run; its labs inherit it (conftest.py, run_all.py)


def processes() -> list[str]:
    """This test run's lab processes, as 'pid command': every process that carries the
    run's mark in its environment (unshare, agents, servers), and every process in a user
    namespace of one of those (whatever ran inside its lab hosts).

    Other labs on the machine (a learner's JupyterLab, another checkout's tests) and
    containers are not this run's residue, and may come and go meanwhile.
    """
    mark = f"{RUN_MARK}={os.environ.get(RUN_MARK, '')}".encode()
    own_userns = os.stat("/proc/self/ns/user").st_ino
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            userns = os.stat(f"/proc/{entry}/ns/user").st_ino
            marked = mark in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if command:
            table[entry] = (command, userns, marked)
    sandboxes = {userns for _, userns, marked in table.values() if marked and userns != own_userns}
    return sorted(f"{pid} {command}" for pid, (command, userns, marked) in table.items()
                  if marked or userns in sandboxes)


def mounts() -> list[str]:
    """The machine's mount table (as this process sees it): mount point, type, source."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        tail = fields[fields.index("-") + 1:]
        found.append(f"{fields[4]} {tail[0]} {tail[1]}")
    return sorted(found)


# What container engines name their cgroups (runc under dockerd, containerd, podman) and
# lablib's own: other programs on a machine make and remove cgroups of their own all the time.
ENGINE_CGROUP = re.compile(r"docker|moby|containerd|libpod|podman|lab")


def cgroups() -> list[str]:
    """The machine's cgroup directories (every hierarchy) that a container engine or a lab made."""
    base = Path("/sys/fs/cgroup")
    if not base.exists():
        return []
    return sorted(name for name in (os.path.relpath(path, base) for path, _, _ in os.walk(base))
                  if ENGINE_CGROUP.search(name))


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
        "mounts": mounts(),
        "cgroups": cgroups(),
    }
    if os.geteuid() == 0:
        state["iptables-save"] = _without(r"(?m)^#.*\n|\[\d+:\d+\]", _run("iptables-save"))
        state["nft list ruleset"] = _without(r"counter packets \d+ bytes \d+", _run("nft", "list", "ruleset"))
    return state


# A lab may only fail to remove what it added; the machine's own mounts and cgroups may go.
ADDED_ONLY = {"mounts", "cgroups"}


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for key in before:
        if before[key] != after.get(key):
            if key in ADDED_ONLY:
                new = sorted(set(after.get(key, [])) - set(before[key]))
                if new:
                    found.append(f"{key}: new {new}")
            elif isinstance(before[key], list):
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
        print("the machine's network, firewall, resolv.conf, mounts, cgroups and processes are as they were")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
