"""Inside the sandbox: capture every interface of every namespace at once, and trace
netfilter, for the duration of a `lab.trace()` block.

Capture: one AF_PACKET socket per namespace, made after joining it (a socket stays in
the namespace it was made in), with the learner's filter compiled to BPF by tcpdump
and kernel timestamps (SO_TIMESTAMPNS) for one order across all of them.

Netfilter: a table `inet lablib_trace` whose chains, ahead of everything else (priority
-350), mark IPv4 packets with `meta nftrace set 1`; `nft monitor trace` then reports
every hook, rule and verdict they meet. The table is deleted when the trace stops and
left out of the learner's `nft list` meanwhile (see shims/nft).
"""
from __future__ import annotations

import ctypes
import select
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from ..model.errors import LabError
from ..model.names import is_world
from .linux import in_netns, socket_inodes

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
PACKET_OUTGOING = 4
TRACE_TABLE = "lablib_trace"
TRACE_RULES = f"""\
table inet {TRACE_TABLE} {{
    chain prerouting {{ type filter hook prerouting priority -350; meta nfproto ipv4 meta nftrace set 1; }}
    chain output {{ type filter hook output priority -350; meta nfproto ipv4 meta nftrace set 1; }}
}}
"""
FRAME_LIMIT = 20000       # frames kept per trace; a trace is for a few flows, not a flood
SNAPLEN = 512             # bytes kept of each frame: every header, and the start of its payload
BYTE_LIMIT = 16 << 20     # bytes of frames kept per trace (with FRAME_LIMIT: at most ~10 MiB)
NFNLGRP_NFTRACE = 9


def compile_filter(expression: str, snaplen: int = SNAPLEN) -> list[tuple[int, int, int, int]]:
    """tcpdump's own compiler turns a filter ("icmp", "tcp port 80") into BPF. The program
    returns `snaplen` for a match, so the kernel queues only that much of each frame."""
    done = subprocess.run(["tcpdump", "-i", "lo", "-s", str(snaplen), "-ddd", expression],
                          capture_output=True, text=True)
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "invalid filter"
        raise LabError(f"cannot trace '{expression}': {message}; use tcpdump syntax, such as "
                       "'icmp', 'arp', 'tcp port 8080' or 'host 10.0.0.2'")
    numbers = done.stdout.split()[1:]
    return [tuple(int(n) for n in numbers[i:i + 4]) for i in range(0, len(numbers), 4)]


def _packet_socket(program: list[tuple[int, int, int, int]]) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # struct sock_fprog {len; struct sock_filter *filter}; the kernel copies the program.
    code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *op) for op in program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(program), ctypes.addressof(code)))
    sock.setblocking(False)
    return sock


class Trace:
    """One running trace in the agent."""

    def __init__(self, runner, namespaces: dict[str, str | None], expression: str, netfilter: bool):
        self.runner = runner
        self.frames: list[tuple[int, str, str, int, bytes]] = []   # (ns time, ns, ifname, pkttype, frame)
        self.netfilter: dict[str, list[str]] = {}   # namespace -> `nft monitor trace` lines, once stopped
        self.dropped = 0
        self.kept_bytes = 0
        program = compile_filter(expression)
        self.sockets: dict[socket.socket, str] = {}
        for name, path in namespaces.items():
            sock = in_netns(path, lambda: _packet_socket(program)) if path else _packet_socket(program)
            self.sockets[sock] = name
        self.monitors: dict[str, object] = {}
        self.traced: list[tuple[str, str | None]] = []
        if netfilter:
            for name, path in namespaces.items():
                if is_world(name):
                    continue   # the outside world has no rules worth tracing
                self._trace_netfilter(name, path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture, daemon=True, name="capture")
        self._thread.start()

    # -- capture -----------------------------------------------------------------------
    def _capture(self) -> None:
        poller = select.epoll()
        by_fd = {sock.fileno(): sock for sock in self.sockets}
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        while not self._stop.is_set():
            for fd, _ in poller.poll(0.05):
                self._drain(by_fd[fd])
        for sock in self.sockets:   # whatever arrived until the very end
            self._drain(sock)
        poller.close()

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                frame, ancillary, _flags, address = sock.recvmsg(SNAPLEN, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return
            stamp = time.time_ns()
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", data[:16])
                    stamp = seconds * 1_000_000_000 + nanoseconds
            if len(self.frames) >= FRAME_LIMIT or self.kept_bytes + len(frame) > BYTE_LIMIT:
                self.dropped += 1
                continue
            self.kept_bytes += len(frame)
            # address = (ifname, protocol, pkttype, hatype, hwaddr); the name is looked up
            # through this socket, so in the namespace the frame was seen in.
            self.frames.append((stamp, self.sockets[sock], address[0], address[2], frame))

    # -- netfilter ---------------------------------------------------------------------
    def _trace_netfilter(self, name: str, path: str | None) -> None:
        enter = [] if path is None else ["nsenter", f"--net={path}"]
        added = subprocess.run([*enter, "nft", "-f", "-"], input=TRACE_RULES, capture_output=True, text=True)
        if added.returncode != 0:
            return   # no nftables here: captures still show the path
        self.traced.append((name, path))
        monitor = self.runner.spawn("", None, name=f"netfilter trace in {name}",
                                    argv=[*enter, "nft", "monitor", "trace"])
        self.monitors[name] = monitor
        _wait_subscribed(monitor.process.pid)

    def stop(self) -> None:
        """End the capture and the netfilter trace; `frames` and `netfilter` hold what they saw."""
        time.sleep(0.02)   # the last replies of the traced command may still be in flight
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()
        for _name, path in self.traced:
            enter = [] if path is None else ["nsenter", f"--net={path}"]
            subprocess.run([*enter, "nft", "delete", "table", "inet", TRACE_TABLE], capture_output=True)
        for name, monitor in self.monitors.items():
            status = monitor.stop()
            self.runner.background.pop(monitor.process.pid, None)
            self.netfilter[name] = status.log.decode(errors="replace").splitlines()


def _wait_subscribed(pid: int, timeout: float = 2.0) -> None:
    """Wait until `nft monitor trace` listens: its netlink socket has joined the trace group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            inodes = socket_inodes(pid)
            for line in Path(f"/proc/{pid}/net/netlink").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1] == "12" and int(fields[3], 16) & (1 << (NFNLGRP_NFTRACE - 1)) \
                        and int(fields[-1]) in inodes:
                    return
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.002)
