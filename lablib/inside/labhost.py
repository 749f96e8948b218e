"""Inside the sandbox: turn a fresh set of namespaces into a lab host.

The lab host gets its own /proc, /sys, /run (so /run/netns is private), its own /etc
(an overlay: /etc/netns, resolv.conf, hosts and sysctl.conf can be edited as tutorials
do, and the machine's /etc never changes), a hostname, and a few shims in front of
PATH so that commands pasted from tutorials (`sudo ...`, `modprobe br_netfilter`) run
as typed.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from ..machine import tools
from ..model.names import sysctl_path
from .linux import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    clone_tree,
    make_read_only,
    mount,
    place_tree,
    sethostname,
)

HOSTNAME = "lab-host"
RUN = Path("/run/lablib")          # lablib's own corner of the lab host
SHIMS = RUN / "bin"
WORLD = RUN / "world"              # the outside world's namespaces, hidden from `ip netns list`
WORLD_RESOLV_CONF = RUN / "world.resolv.conf"   # outside hosts resolve through the outside DNS
SHIM_SOURCES = Path(__file__).with_name("shims")

RESOLV_CONF = """\
# The lab host resolves names like a stock Ubuntu host: through a local stub resolver
# on 127.0.0.53, which forwards to the outside world's DNS server.
nameserver 127.0.0.53
options edns0 trust-ad
search .
"""

HOSTS = f"""\
127.0.0.1\tlocalhost
127.0.1.1\t{HOSTNAME}

::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""

SYSCTL_CONF = """\
# /etc/sysctl.conf of the lab host (a fresh host's: nothing set).
# Lines like net.ipv4.ip_forward=1 added here apply with `sysctl -p`.
"""


# The lab host's own writable places: each a fresh tmpfs, gone with the lab. Everything
# else of the machine is seen read-only (the /etc overlay is the lab's own too).
PRIVATE_PLACES = {"/run": "755", "/tmp": "1777", "/var/tmp": "1777", "/root": "700", "/dev/shm": "1777"}
HOME = "/root"
PLACE_SIZE = 256 << 20   # bytes each private place may hold (they are memory)


def contain(keep: list[str], owner: int | None = None, size: int = PLACE_SIZE) -> None:
    """Make this mount namespace's view of the machine read-only and give it private,
    empty writable places; `keep` (the lab's Python and lablib, wherever they are) stays
    visible read-only even under a private place (a checkout under /tmp, as in CI).

    `owner` is who owns the new places (as the machine sees it); by default whoever mounts.
    """
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    kept = [(path, clone_tree(path)) for path in keep if _under_private_place(path)]
    make_read_only("/")
    for kernel_view in ("/proc", "/sys"):
        # The lab mounts its own on top; the kernel allows that only over a writable one.
        make_read_only(kernel_view, writable=True)
    for place, mode in PRIVATE_PLACES.items():
        if not os.path.isdir(place):
            continue
        ids = f",uid={owner},gid={owner}" if owner is not None else ""
        mount("tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size={size}{ids}")
    for path, fd in kept:
        os.makedirs(path, exist_ok=True)
        make_read_only(fd=fd)
        place_tree(fd, path)
        os.close(fd)
    if owner is not None:
        _lend_tun(owner)


def _lend_tun(owner: int) -> None:
    """Give a root-started lab's root the tun device (slirp4netns, rootless networking's
    tap): its root is an unprivileged id outside, and a machine may keep /dev/net/tun 0600
    (Debian makes it 0666). A node of the lab's own, in a tmpfs only this mount namespace
    sees; the machine's /dev is not touched."""
    try:
        device = os.stat("/dev/net/tun").st_rdev
        mount("tmpfs", "/dev/net", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
        os.mknod("/dev/net/tun", 0o600 | stat.S_IFCHR, device)
        os.chown("/dev/net/tun", owner, owner)
    except OSError:
        pass   # no tun on this machine: slirp4netns says so when it is asked for


def _under_private_place(path: str) -> bool:
    return any(path.startswith(place + "/") for place in PRIVATE_PLACES)


def prepare_filesystem(keep: list[str], contained: bool = False, size: int = PLACE_SIZE) -> list[str]:
    """Give the lab host private mounts; returns notes on anything that fell back.

    `contained`: the machine's root already did contain() for this lab (see
    notebook/sandbox.py), so the private places are there, and locked.
    """
    notes = []
    if not contained:
        contain(keep, size=size)
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for directory in (RUN / "etc" / "upper", RUN / "etc" / "work", SHIMS, WORLD):
        directory.mkdir(parents=True, exist_ok=True)
    try:
        mount("overlay", "/etc", "overlay", 0,
              f"lowerdir=/etc,upperdir={RUN}/etc/upper,workdir={RUN}/etc/work")
    except OSError as error:
        notes.append(f"/etc overlay unavailable ({error.strerror}); /etc/netns files cannot be created")
        _bind_private_files()
        return notes
    _write_etc()
    return notes


def _write_etc() -> None:
    etc = Path("/etc")
    # Files of its own, not the machine's (which belong to a user the sandbox may not map).
    for name, text in (("resolv.conf", RESOLV_CONF), ("hosts", HOSTS),
                       ("hostname", HOSTNAME + "\n"), ("sysctl.conf", SYSCTL_CONF)):
        _replace(etc / name, text)
    # The machine's own /etc/netns entries must not leak into the lab host.
    shutil.rmtree(etc / "netns", ignore_errors=True)


def _replace(path: Path, text: str) -> None:
    # Unlink first: resolv.conf is often a symlink into /run, and the machine's files
    # belong to an unmapped user; a new file in the overlay belongs to the lab host.
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    path.write_text(text)


def _bind_private_files() -> None:
    for name, text in (("resolv.conf", RESOLV_CONF), ("hosts", HOSTS)):
        private = RUN / name
        private.write_text(text)
        mount(str(private), f"/etc/{name}", None, MS_BIND)


def install_shims(full_id_map: bool) -> None:
    """Put sudo, modprobe and nft shims first on PATH; with a single-uid map, also tcpdump/dnsmasq."""
    wanted = ["sudo", "modprobe", "nft"] + ([] if full_id_map else ["tcpdump", "dnsmasq"])
    for name in wanted:
        real = tools.find(name) if name in ("tcpdump", "dnsmasq", "nft") else ""
        if real is None:
            continue  # not installed: the shell's "command not found" hint says so
        text = (SHIM_SOURCES / name).read_text().replace("@REAL@", real or "")
        target = SHIMS / name
        target.write_text(text)
        target.chmod(0o755)


def identity() -> None:
    sethostname(HOSTNAME)


def command_environment(python_bin: str) -> dict[str, str]:
    """The environment every command in the lab host starts with."""
    env = {
        # Shims first, then the labs' Python (so `python3` resolves as typed), then the system.
        "PATH": f"{SHIMS}:{python_bin}:{tools.SYSTEM_PATH}",
        "HOME": HOME,                  # the lab host's own home, private and empty
        "USER": "root", "LOGNAME": "root",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "HOSTNAME": HOSTNAME,
        "PYTHONUNBUFFERED": "1",      # servers' logs appear as they happen
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


# A new network namespace copies its IPv4 settings from the machine's own, so a machine
# running Docker (ip_forward=1) would hand every lab host forwarding already on. The lab
# host starts from a stock Ubuntu host's values instead, whatever the machine has.
FRESH_HOST_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.rp_filter": "2",
    "net.ipv4.conf.default.rp_filter": "2",
    "net.ipv4.conf.all.route_localnet": "0",
    # With br_netfilter loaded (Docker needs it), bridged traffic crosses iptables.
    "net.bridge.bridge-nf-call-iptables": "1",
}


def set_defaults() -> None:
    """Start from a fresh Linux host's settings (lo is brought up with the uplink, in world.py)."""
    for key, value in FRESH_HOST_SYSCTLS.items():
        path = sysctl_path(key)
        if path.exists():
            path.write_text(value + "\n")
