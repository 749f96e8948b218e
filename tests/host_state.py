"""The real machine's network state, to prove a lab leaves it exactly as it found it.

`capture()` reads what a lab could conceivably leave behind — network namespaces,
links, addresses, routes, iptables and nft rules, /etc/resolv.conf, /run/netns,
this test run's lab processes, the machine's mounts, cgroups named for labs, and files
in /tmp, /var/tmp and the users' homes owned by an id labs run as — normalised so that only real changes differ (counters and lifetimes are
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


# What the test harness itself leaves in a user's /tmp and home (not a lab's doing).
HARNESS = ("pytest-of-", "labkit-host-before-", "labkit-rootless-", ".ipython", ".cache", ".local", ".config",
           ".jupyter", ".python_history", ".bash_history", ".wget-hsts", ".vagrant.d")
HARNESS_SUFFIXES = ("test_hist.sqlite",)   # IPython's test shell (test_magics) keeps its history there


def _lab_ids() -> dict[str, set[range]]:
    """Whose files a lab of this run could leave, as the machine sees them: root's labs
    write as their unprivileged range; the test users' labs as the user or its subids."""
    owners: dict[str, set[range]] = {}
    try:
        from lablib.machine.ids import root_lab_range
        first, count = root_lab_range()
        owners["root"] = {range(first, first + count)}
    except ImportError:
        pass
    import pwd
    for user in ("labkit-subids", "labkit-single", pwd.getpwuid(os.getuid()).pw_name):
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            continue
        ids = {range(entry.pw_uid, entry.pw_uid + 1)}
        for line in (Path("/etc/subuid").read_text().splitlines() if Path("/etc/subuid").exists() else []):
            name, _, rest = line.partition(":")
            if name == user and rest.count(":") == 1:
                start, count = map(int, rest.split(":"))
                ids.add(range(start, start + count))
        owners[user] = ids
    return owners


def lab_files() -> list[str]:
    """Entries of /tmp, /var/tmp and the users' homes owned by an id a lab runs as."""
    import pwd
    found = []
    owners = _lab_ids()
    every = [r for ranges in owners.values() for r in ranges]
    places = ["/tmp", "/var/tmp", "/root"]
    for user in owners:
        try:
            places.append(pwd.getpwnam(user).pw_dir)
        except KeyError:
            continue
    for place in dict.fromkeys(places):
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        for name in entries:
            if name.startswith(HARNESS) or name.endswith(HARNESS_SUFFIXES):
                continue
            try:
                owner = os.lstat(os.path.join(place, name)).st_uid
            except OSError:
                continue
            if any(owner in r for r in every):
                found.append(f"{place}/{name} (uid {owner})")
    return sorted(found)


def mounts() -> list[str]:
    """The machine's mounts (this process's mount namespace): where, what, how."""
    rows = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        rows.append(f"{fields[4]} {fields[separator + 1]} {fields[separator + 2]} {fields[5].split(',')[0]}")
    return sorted(rows)


# What container engines name their cgroups (runc under dockerd, containerd, podman) and
# lablib's own: other programs on a machine make and remove cgroups of their own all the time.
ENGINE_CGROUP = re.compile(r"lablib|labkit|docker|moby|containerd|libpod|podman")
# Only what is new there is residue: the machine's own mounts and cgroups may come and go.
ADDED_ONLY = ("mounts", "cgroups")


def cgroups() -> list[str]:
    """Cgroups a lab could leave: lablib's systemd scopes, a container engine's, any named for a lab."""
    found = []
    for top, folders, _files in os.walk("/sys/fs/cgroup"):
        for folder in folders:
            if ENGINE_CGROUP.search(folder):
                found.append(os.path.join(top, folder))
        if top.count("/") > 8:
            folders[:] = []
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
        "mounts": mounts(),
        "cgroups": cgroups(),
        "labs' files in /tmp, /var/tmp and homes": lab_files(),
    }
    if os.geteuid() == 0:
        state["iptables-save"] = _without(r"(?m)^#.*\n|\[\d+:\d+\]", _run("iptables-save"))
        state["nft list ruleset"] = _without(r"counter packets \d+ bytes \d+", _run("nft", "list", "ruleset"))
    return state


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
        print("the machine's network, firewall, resolv.conf, processes, mounts, cgroups and files are as they were")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
