"""Why a probe failed: read from a snapshot, the first missing piece on the way.

Pure functions of the model, used by the checks (notebook/checks.py) for their hints.
"""
from __future__ import annotations

import ipaddress
from typing import Protocol

from ..model.names import HOST, canonical_ns
from ..model.state import Namespace, Snapshot


class ProbeOutput(Protocol):
    """What a probe (ping, curl) printed: a CommandResult on the notebook side."""
    stdout: str
    stderr: str


def describe_ns(ns: str | None) -> str:
    """The namespace in a learner's words: "the lab host", or "namespace c1"."""
    return "the lab host" if canonical_ns(ns) == HOST else f"namespace {ns}"


def command_prefix(ns: str | None) -> str:
    """How the learner would type a command for namespace `ns`."""
    return "" if canonical_ns(ns) == HOST else f"ip netns exec {ns} "


def diagnose(snapshot: Snapshot, src: str, address: str, result: ProbeOutput) -> str:
    """Why `src` cannot reach `address`: the first missing piece on the way."""
    namespace = snapshot.namespaces[src]
    try:
        target = ipaddress.ip_address(address)
    except ValueError:
        return f"{address} could not be resolved there: {result.stderr.strip()[-120:]}"
    lo = namespace.link("lo")
    if lo is not None and lo.state == "DOWN" and target.is_loopback:
        return f"lo is DOWN in {describe_ns(src)}: {command_prefix(src)}ip link set lo up"
    for link in namespace.links:
        for cidr in link.notable_addresses:
            if target == ipaddress.ip_interface(cidr).ip:
                return f"{address} is {describe_ns(src)}'s own address, but nothing answered: is a server running there?"
    routes = [r for r in namespace.routes
              if r.dst == "default" or target in ipaddress.ip_network(r.dst, strict=False)]
    if not routes:
        for link in namespace.links:   # the first cause: a link down took its connected route with it
            if link.state != "UP" and link.kind != "loopback" and any(
                    target in ipaddress.ip_interface(a).network for a in link.notable_addresses):
                return (f"{link.name} in {describe_ns(src)} is {link.state}, so there is no route to {address}; "
                        f"bring it up: {command_prefix(src)}ip link set {link.name} up")
        up = [l for l in namespace.links if l.kind != "loopback" and l.state != "DOWN"]
        if not up:
            return f"{describe_ns(src)} has no interface that is up (besides lo)"
        return f"{describe_ns(src)} has no route to {address}: add an address on its subnet, or a default route"
    best = max(routes, key=lambda r: -1 if r.dst == "default" else ipaddress.ip_network(r.dst).prefixlen)
    rivals = [r for r in routes if r.dst == best.dst and r.dev != best.dev]
    if rivals:
        devices = ", ".join(r.dev for r in [best, *rivals])
        text = (f"{len(rivals) + 1} routes cover {best.dst} ({devices}): the first one wins, so traffic "
                f"for {address} leaves by {best.dev} only — one subnet wants one link (a bridge)")
        # Name the address that makes the extra route, with the command that deletes it.
        for r in [best, *rivals]:
            link = namespace.link(r.dev) if r.dev else None
            if link is None or link.kind == "bridge":
                continue
            stray = next((a for a in link.notable_addresses
                          if ipaddress.ip_interface(a).network == ipaddress.ip_network(best.dst, strict=False)), None)
            if stray and any(l.kind == "bridge" for l in namespace.links if l.name in {x.dev for x in [best, *rivals]}):
                return (f"{text}; {link.name} still has {stray}, which makes the route by {link.name}: delete it: "
                        f"{command_prefix(src)}ip address delete {stray} dev {link.name}")
        return text
    out = namespace.link(best.dev) if best.dev else None
    if out is not None and out.state != "UP":
        return f"the route to {address} leaves by {out.name}, which is {out.state}"
    far = snapshot.link(*out.peer) if out is not None and out.peer else None
    if far is not None and far.state != "UP":
        return (f"the other end of {out.name}, {far.name} in {describe_ns(far.ns)}, is {far.state}: "
                f"{command_prefix(far.ns)}ip link set {far.name} up")
    if far is not None and far.kind == "veth" and far.master is None and not far.notable_addresses and any(
            l.kind == "bridge" for l in snapshot.namespaces[far.ns].links):
        bridges = [l for l in snapshot.namespaces[far.ns].links if l.kind == "bridge"]
        same_subnet = [l for l in bridges if any(ipaddress.ip_interface(a).network == ipaddress.ip_interface(c).network
                                                 for a in l.notable_addresses for c in out.notable_addresses)]
        bridge = (same_subnet or bridges)[0].name
        return (f"the other end of {out.name}, {far.name} in {describe_ns(far.ns)}, is on no bridge and has no "
                f"address, so nothing hears {describe_ns(src)}: {command_prefix(far.ns)}ip link set {far.name} "
                f"master {bridge}")
    if "Connection refused" in result.stderr or "Connection refused" in result.stdout:
        return f"{address} answered, but nothing listens on that port there"
    host = snapshot.namespaces.get(HOST)
    if host is not None and src != HOST:
        drop = next((r for r in host.rules if r.table == "filter" and r.chain == "FORWARD"
                     and r.rule == "policy DROP" and r.source == "iptables"), None)
        if drop is not None:
            accepting = [r.rule for r in host.rules if r.table == "filter" and r.chain == "FORWARD"
                         and r.rule.endswith("-j ACCEPT")]
            if not accepting:
                return "the lab host's FORWARD policy is DROP and no FORWARD rule accepts anything yet"
            return (f"the lab host's FORWARD policy is DROP; {len(accepting)} FORWARD rule(s) accept some "
                    "traffic — trace it with lab.trace() to see whether this packet is dropped, or lost elsewhere")
        if not _is_on_link(namespace, target) and host.sysctls.get("net.ipv4.ip_forward") == "0":
            return "the packet must be routed by the lab host, where net.ipv4.ip_forward is 0"
    if best.dst == "default":
        return (f"only the default route (via {best.gateway} on {best.dev}) matches {address}: no interface "
                f"of {describe_ns(src)} is on its subnet — is the address right, and is the far end up and on a link?")
    return f"the route to {best.dst} on {best.dev} is there, but no answer came back: trace it with lab.trace()"


def _is_on_link(namespace: Namespace, target: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(r.gateway is None and r.dst != "default" and target in ipaddress.ip_network(r.dst, strict=False)
               for r in namespace.routes)


def link_down_on_the_way(namespace, via: str | None, dev: str | None):
    """The interface a missing route would use, when it is not up: the kernel removes (and
    refuses) routes over a link that is down, so that is the first thing to fix."""
    candidates = [namespace.link(dev)] if dev else []
    if via and not dev:
        gateway = ipaddress.ip_address(via)
        candidates = [link for link in namespace.links
                      if any(gateway in ipaddress.ip_interface(cidr).network for cidr in link.notable_addresses)]
    return next((link for link in candidates if link is not None and link.state != "UP"), None)
