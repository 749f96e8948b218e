"""Why a probe failed: read from a snapshot, the first missing piece on the way.

Pure functions of the model, used by the checks (notebook/checks.py) for their hints.
"""
from __future__ import annotations

import ipaddress

from ..model.state import HOST, Snapshot


def describe_ns(ns: str | None) -> str:
    return "the lab host" if ns in (None, HOST) else f"namespace {ns}"


def canonical_ns(ns: str | None) -> str:
    return HOST if ns in (None, "", "host") else ns


def command_prefix(ns: str | None) -> str:
    """How the learner would type a command for namespace `ns`."""
    return "" if canonical_ns(ns) == HOST else f"ip netns exec {ns} "


def diagnose(snapshot: Snapshot, src: str, address: str, result) -> str:
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
        up = [l for l in namespace.links if l.kind != "loopback" and l.state != "DOWN"]
        if not up:
            return f"{describe_ns(src)} has no interface that is up (besides lo)"
        return f"{describe_ns(src)} has no route to {address}: add an address on its subnet, or a default route"
    best = max(routes, key=lambda r: -1 if r.dst == "default" else ipaddress.ip_network(r.dst).prefixlen)
    rivals = [r for r in routes if r.dst == best.dst and r.dev != best.dev]
    if rivals:
        devices = ", ".join(r.dev for r in [best, *rivals])
        return (f"{len(rivals) + 1} routes cover {best.dst} ({devices}): the first one wins, so traffic "
                f"for {address} leaves by {best.dev} only — one subnet wants one link (a bridge)")
    out = namespace.link(best.dev) if best.dev else None
    if out is not None and out.state != "UP":
        return f"the route to {address} leaves by {out.name}, which is {out.state}"
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


def _is_on_link(namespace, target) -> bool:
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
