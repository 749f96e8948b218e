"""What a trace or a pair of counter readings actually showed, as one value a prediction
can be compared with. Pure functions of the model (packets, snapshots)."""
from __future__ import annotations

import ipaddress

from ..model.packets import Packet
from ..model.state import Snapshot

# What a prediction can be about, and how each is read from a trace.
TRACE_FACTS = {
    "dies_at": "the namespace where the first packet died ('delivered' when it did not)",
    "source_at": "the source address the first packet had when it arrived in namespace `at`",
    "destination_at": "the destination address the first packet had when it arrived in namespace `at`",
    "outer_source_at": "the source address in the outermost IP header of the first packet as it arrived in "
                       "namespace `at`: the tunnel's, when it came wrapped (VXLAN), else its own",
    "outer_destination_at": "the destination address in the outermost IP header, likewise",
    "replied": "'yes' when a reply came back to the sender, else 'no'",
    "verdict_rule": "the rule (or policy) whose verdict decided the first packet in namespace `at`",
    "path": "the namespaces the first packet went through, in order, joined by ' → '",
}


def _first_flow(packets: list[Packet]) -> list[Packet]:
    # The experiment's packets: not ARP, and not a host's own multicast chatter (an IGMP
    # report a bridge sends when it comes up) that the trace happened to catch first.
    ip = [p for p in packets if p.hops and p.first.protocol != "arp" and not _multicast(p.first.dst)]
    if not ip:
        return []
    flow = ip[0].flow
    return [p for p in ip if p.flow == flow]


def _multicast(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_multicast
    except ValueError:
        return False


def trace_fact(packets: list[Packet], fact: str, at: str | None = None) -> str:
    """The value of `fact` (one of TRACE_FACTS) in a trace's packets; '' when the trace
    saw nothing to tell it by."""
    flow = _first_flow(packets)
    if not flow:
        return ""
    first = flow[0]
    if fact == "dies_at":
        dead = next((p for p in flow if p.dropped_in), None)
        return dead.dropped_in if dead else "delivered"
    if fact in ("source_at", "destination_at", "outer_source_at", "outer_destination_at"):
        hop = next((h for h in first.hops if h.ns == at and h.direction == "in"), None) or \
            next((h for h in first.hops if h.ns == at), None)
        if hop is None:
            return ""
        if fact.startswith("outer_") and hop.encapsulated:
            return hop.outer_src if fact == "outer_source_at" else hop.outer_dst
        return hop.src if fact in ("source_at", "outer_source_at") else hop.dst
    if fact == "replied":
        origin, sender = first.first.ns, first.first.src
        for packet in flow[1:]:
            if any(h.ns == origin and h.direction == "in" and h.dst == sender for h in packet.hops):
                return "yes"
        return "no"
    if fact == "verdict_rule":
        steps = [s for s in first.netfilter if (at is None or s.ns == at) and s.table == "filter"
                 and s.verdict.lower() in ("accept", "drop", "reject")]
        return steps[-1].rule if steps else ""
    if fact == "path":
        path = []
        for hop in first.hops:
            if not path or path[-1] != hop.ns:
                path.append(hop.ns)
        return " → ".join(path)
    raise ValueError(f"unknown fact {fact!r}; choose one of: {', '.join(TRACE_FACTS)}")


def counted_rules(before: Snapshot, after: Snapshot) -> list[tuple[str, str, str, str]]:
    """The rules and policies whose packet counters moved between two readings, as
    (ns, table, chain, rule text), in the order iptables lists them."""
    old = {(r.ns, r.table, r.chain, r.rule): r.packets for ns in before.namespaces.values() for r in ns.rules}
    moved = []
    for namespace in after.namespaces.values():
        for r in namespace.rules:
            key = (r.ns, r.table, r.chain, r.rule)
            if r.packets > old.get(key, r.packets if key in old else 0):
                moved.append(key)
    return moved


def same_value(predicted: str, observed: str) -> bool:
    """Whether a predicted value names what was observed: addresses compared as
    addresses (172.17.0.2 == 172.17.0.2/32), words case-insensitively."""
    predicted, observed = str(predicted).strip(), str(observed).strip()
    try:
        return ipaddress.ip_interface(predicted).ip == ipaddress.ip_interface(observed).ip
    except ValueError:
        pass
    if predicted.startswith(("-A ", "-j", "-i", "-o", "-p", "-s", "-d", "--")) or observed.startswith("-A "):
        from .rules import mismatches, parse_rule, parse_spec
        try:
            return not mismatches(parse_spec(predicted.split(" ", 2)[2] if predicted.startswith("-A ") else predicted),
                                  parse_rule(observed))
        except (ValueError, IndexError):
            return False
    return predicted.lower() == observed.lower()
