"""The lab host's kernel state as one model: what the agent reads, and what drawings,
tables and checks are made from.

Names follow the kernel's and iproute2's (ifname, master, operstate, link-netnsid), so a
learner can match a table row with what `ip -d link` prints. Plain dataclasses: they
cross the pipe from the agent to the notebook as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

HOST = "host"                 # the lab host's own (root) network namespace
WORLD_PREFIX = "world:"       # namespaces of the simulated outside world


@dataclass
class Link:
    ns: str
    index: int
    name: str
    kind: str                       # loopback, veth, bridge, vxlan, ... or "device"
    mac: str
    mtu: int
    operstate: str                  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    admin_up: bool                  # IFF_UP: `ip link set X up` was done
    lower_up: bool                  # the cable is plugged in (carrier)
    master: str | None = None       # the bridge it is a port of
    peer: tuple[str, str] | None = None   # a veth's other end: (namespace, ifname)
    peer_index: int | None = None         # IFLA_LINK: the other end's ifindex
    link_netnsid: int | None = None       # IFLA_LINK_NETNSID, relative to `ns`
    addresses: list[str] = field(default_factory=list)   # "10.0.0.1/24"
    # A VXLAN device's settings, as `ip -d link` shows them: id (the VNI), dstport, local,
    # dev (the underlay interface), learning; and remotes: the `dst` of its FDB entries.
    vxlan: dict | None = None

    @property
    def state(self) -> str:
        """UP, DOWN or NO-CARRIER, as a learner reads `ip link`."""
        if not self.admin_up:
            return "DOWN"
        if not self.lower_up:
            return "NO-CARRIER"
        return "UP"

    @property
    def key(self) -> tuple[str, str]:
        return (self.ns, self.name)

    @property
    def notable_addresses(self) -> list[str]:
        """IPv4 and global IPv6 addresses; the automatic fe80:: link-local ones left out."""
        return [address for address in self.addresses if not address.startswith("fe80:")]


@dataclass
class Route:
    ns: str
    dst: str                        # "default" or "10.0.0.0/24"
    dev: str | None
    gateway: str | None = None
    src: str | None = None
    scope: str = "global"           # "link" for connected routes
    proto: str = ""
    table: str = "main"
    type: str = "unicast"

    @property
    def connected(self) -> bool:
        return self.gateway is None and self.type == "unicast"


@dataclass
class Neighbour:
    ns: str
    address: str
    mac: str | None
    dev: str
    state: str


@dataclass
class FdbEntry:
    """A MAC address a bridge has learned on one of its ports."""
    ns: str
    mac: str
    port: str
    bridge: str | None
    dst: str | None = None          # a VXLAN entry: the remote host's address to send to
    permanent: bool = False         # added by hand (`bridge fdb add/append`), not learned


@dataclass
class Rule:
    """A firewall rule (or a chain's policy) with its counters."""
    ns: str
    family: str                     # ip, ip6, inet, ...
    table: str
    chain: str
    rule: str                       # as iptables-save or nft lists it; "policy ACCEPT" for a policy
    packets: int
    bytes: int
    source: str                     # "iptables" or "nft"


@dataclass
class Connection:
    """A conntrack entry: one flow, as it left and as its reply will come back."""
    ns: str
    protocol: str
    src: str
    dst: str
    sport: int | None
    dport: int | None
    reply_src: str
    reply_dst: str
    reply_sport: int | None
    reply_dport: int | None
    state: str
    status: str

    @property
    def nat(self) -> str:
        """What NAT did to this flow, if anything."""
        done = []
        if self.reply_dst != self.src:
            done.append(f"SNAT {self.src} -> {self.reply_dst}")
        if self.reply_src != self.dst:
            done.append(f"DNAT {self.dst} -> {self.reply_src}")
        return ", ".join(done)


@dataclass
class Socket:
    ns: str
    protocol: str
    address: str
    port: int
    process: str | None
    pid: int | None


@dataclass
class Namespace:
    name: str
    links: list[Link] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    fdb: list[FdbEntry] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)

    @property
    def role(self) -> str:
        if self.name == HOST:
            return "host"
        return "outside" if self.name.startswith(WORLD_PREFIX) else "container"

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links if link.name == name), None)


@dataclass
class Snapshot:
    """Every namespace of one lab host, read in one pass."""
    namespaces: dict[str, Namespace]
    taken: float                    # time.time() when read
    seconds: float = 0.0            # how long reading took

    def links(self) -> list[Link]:
        return [link for ns in self.namespaces.values() for link in ns.links]

    def link(self, ns: str, name: str) -> Link | None:
        namespace = self.namespaces.get(ns)
        return namespace.link(name) if namespace else None

    def veth_pairs(self) -> list[tuple[Link, Link]]:
        """Each veth pair once, as its two ends."""
        pairs, seen = [], set()
        for link in self.links():
            if link.kind == "veth" and link.peer and link.key not in seen:
                other = self.link(*link.peer)
                if other is not None:
                    seen.update({link.key, other.key})
                    pairs.append((link, other))
        return pairs

    def hosted(self) -> dict[str, str]:
        """Containers that live inside another named namespace acting as a host: every
        veth of theirs leads to a port of a bridge there (as c3's eth0 leads to veth-c3 on
        host2's docker0). Maps each such container to its host; one level deep."""
        parents: dict[str, str] = {}
        for ns in self.namespaces.values():
            if ns.name == HOST or ns.name.startswith(WORLD_PREFIX):
                continue
            ends = [self.link(*link.peer) for link in ns.links if link.kind == "veth" and link.peer]
            if not ends or any(end is None or not end.master for end in ends):
                continue
            places = {end.ns for end in ends}
            if len(places) == 1:
                place = places.pop()
                if place != ns.name and place != HOST and not place.startswith(WORLD_PREFIX):
                    parents[ns.name] = place
        return {child: parent for child, parent in parents.items() if parent not in parents}

    def ports(self, ns: str, bridge: str) -> list[Link]:
        return [link for link in self.namespaces[ns].links if link.master == bridge]
