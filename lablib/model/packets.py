"""What a trace is made of: sightings of a packet (hops), the netfilter steps it met, and
the packet itself with its flow and fate."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Hop:
    """One sighting of a packet: on this interface of this namespace, going in or out."""
    time: int                   # kernel timestamp, ns
    ns: str
    interface: str
    direction: str              # "in" (received) or "out" (sent)
    eth_src: str
    eth_dst: str
    protocol: str               # arp, icmp, tcp, udp
    src: str
    dst: str
    sport: int | None
    dport: int | None
    ttl: int | None
    summary: str
    frame: bytes = field(repr=False, default=b"")
    tcp: tuple | None = field(repr=False, default=None)   # (seq, ack, flags, payload length)
    # Seen wrapped in a tunnel (VXLAN): the outer header's addresses and the VNI. The
    # fields above are then the inner packet's, so a hop on the underlay lines up with
    # the same packet's hops inside the containers.
    outer_src: str | None = None
    outer_dst: str | None = None
    vni: int | None = None

    @property
    def encapsulated(self) -> bool:
        return self.vni is not None

    @property
    def addresses(self) -> tuple:
        return (self.src, self.sport, self.dst, self.dport)


@dataclass
class NetfilterStep:
    """A rule or policy a packet met, as `nft monitor trace` reported it."""
    ns: str
    family: str
    table: str
    chain: str
    rule: str
    verdict: str
    fields: dict = field(default_factory=dict, repr=False)

    @property
    def nat(self) -> str | None:
        for word in ("masquerade", "snat", "dnat", "redirect"):
            if re.search(rf"\b{word}\b", self.rule, re.I) and self.table == "nat":
                return word.upper()
        return None

    def __str__(self) -> str:
        return f"{self.table} {self.chain}: {self.rule} → {self.verdict}"


@dataclass
class Packet:
    number: int
    identity: tuple = field(repr=False)
    hops: list[Hop] = field(default_factory=list)
    netfilter: list[NetfilterStep] = field(default_factory=list)
    flow: int = 0
    fate: str = ""              # "delivered to c2", "dropped in host: ..."
    dropped_in: str | None = None
    changes: dict[str, str] = field(default_factory=dict)   # ns -> "SNAT 10.0.0.2 → 203.0.113.10 (MASQUERADE)"
    # hop index -> the rewrites done at that hop's hook: a destination is rewritten where the
    # packet arrives (PREROUTING), a source where it leaves (POSTROUTING), whether by a rule
    # or by conntrack undoing a rule for a reply.
    changes_at: dict[int, str] = field(default_factory=dict)

    @property
    def first(self) -> Hop:
        return self.hops[0]

    @property
    def summary(self) -> str:
        return self.first.summary
