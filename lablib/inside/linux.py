"""Thin wrappers over the few Linux calls the agent needs that Python 3.11's os module lacks.

Everything here runs inside the sandbox (the agent), never in the notebook's kernel.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
MS_RDONLY, MS_REMOUNT = 0x1, 0x20
# The new mount API (Linux >= 5.12); the same system call numbers on every architecture.
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 0x1, 0o2000000
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0,
          options: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       options.encode() if options else None),
           f"mount {fstype or source} on {target}")


def clone_tree(path: str) -> int:
    """A detached copy of the mounts at `path` and below (open_tree), to place elsewhere."""
    fd = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(),
                       ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE))
    if fd < 0:
        _check(-1, f"open_tree {path}")
    return fd


def make_read_only(path: str | None = None, fd: int | None = None, writable: bool = False) -> None:
    """Make the mounts at `path` (or the detached tree `fd`) and below read-only (or,
    with `writable`, no longer read-only)."""
    attr = (ctypes.c_uint64 * 4)(*((0, MOUNT_ATTR_RDONLY) if writable else (MOUNT_ATTR_RDONLY, 0)), 0, 0)
    if fd is not None:
        result = _libc.syscall(SYS_MOUNT_SETATTR, fd, b"", ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE),
                               attr, ctypes.c_size_t(32))
    else:
        result = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), ctypes.c_uint(AT_RECURSIVE),
                               attr, ctypes.c_size_t(32))
    _check(0 if result == 0 else -1, f"read-only {path or 'tree'}")


def place_tree(fd: int, target: str) -> None:
    """Attach a tree from clone_tree() at `target` (move_mount)."""
    result = _libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(),
                           ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    _check(0 if result == 0 else -1, f"move_mount to {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def set_process_name(name: str) -> None:
    """Set the short name `ps -o comm` and `top` show for this process."""
    _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def in_fresh_thread(work: Callable[[], T], name: str = "lablib") -> T:
    """Run `work` in a new thread and return its result (or raise its error) here.

    Namespace changes (setns, unshare) made by `work` die with that thread, so the
    caller's thread stays where it was.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed back to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def in_netns(path: str, work: Callable[[], T]) -> T:
    """Run `work` inside the network namespace pinned at `path`."""
    def joined() -> T:
        with open(path) as ns:
            setns(ns.fileno())
        return work()

    return in_fresh_thread(joined, name=f"netns:{os.path.basename(path)}")


def create_netns(path: str) -> None:
    """Create a new network namespace and pin it at `path` (what `ip netns add` does)."""
    with open(path, "w"):
        pass

    def pin() -> None:
        unshare(CLONE_NEWNET)
        mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, MS_BIND)

    in_fresh_thread(pin, name="netns-create")



def process_ids() -> list[int]:
    """Every process this PID namespace's /proc shows."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process `pid` holds open (its /proc/PID/fd links
    "socket:[INODE]"); empty when the process is gone or not ours to read."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes
