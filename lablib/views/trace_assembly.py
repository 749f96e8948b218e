"""A trace's raw observations become packets, flows and fates.

The agent captures every interface of every namespace and traces netfilter
(inside/capture.py); here those observations become *packets* (the same datagram seen
hop after hop — its IP ID, ICMP sequence, TCP sequence and payload survive NAT, while
addresses and TTL may change), packets become *flows* (ARP request and reply, ICMP echo
and reply, a TCP connection), and each packet gets its fate: delivered, or dropped —
where, and why. Pure functions of the data: no lab host needed.
"""
from __future__ import annotations

import hashlib
import re
import socket

import dpkt

from ..model.packets import Hop, NetfilterStep, Packet
from ..model.state import Snapshot

PKTTYPE_OUTGOING = 4
VXLAN_PORTS = (4789, 8472)   # IANA's, and Linux's old default
ICMP_NAMES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}
UNREACHABLE = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable", 13: "prohibited"}


def _ip(raw: bytes) -> str:
    return socket.inet_ntoa(raw)


# -- parsing frames --------------------------------------------------------------------

def parse(frame: bytes) -> dict | None:
    """What a frame is, and what identifies the datagram it carries across NAT.

    A VXLAN frame (UDP to port 4789) is read as the frame it carries, with the outer
    header's addresses and the VNI added: the same packet as the inner one seen inside
    the containers, on the hop where it crossed the underlay wrapped."""
    outer = _vxlan(frame)
    if outer is not None:
        vni, inner, outer_fields = outer
        parsed = parse(inner)
        if parsed is None:
            return None   # it carries something other than IPv4 or ARP (IPv6 chatter)
        parsed.update(outer_fields, vni=vni, summary=f"VXLAN {vni} [{parsed['summary']}]")
        return parsed
    try:
        eth = dpkt.ethernet.Ethernet(frame)
    except (dpkt.UnpackError, dpkt.NeedData):
        return None
    mac = lambda raw: ":".join(f"{b:02x}" for b in raw)
    base = {"eth_src": mac(eth.src), "eth_dst": mac(eth.dst)}
    if isinstance(eth.data, dpkt.arp.ARP):
        arp = eth.data
        spa, tpa = _ip(arp.spa), _ip(arp.tpa)
        request = arp.op == dpkt.arp.ARP_OP_REQUEST
        summary = f"ARP who-has {tpa} tell {spa}" if request else f"ARP {spa} is-at {mac(arp.sha)}"
        return dict(base, protocol="arp", src=spa, dst=tpa, sport=None, dport=None, ttl=None, summary=summary,
                    identity=("arp", arp.op, mac(arp.sha), spa, tpa), endpoints={("arp", frozenset({spa, tpa}))})
    if not isinstance(eth.data, dpkt.ip.IP):
        return None
    ip = eth.data
    src, dst, l4 = _ip(ip.src), _ip(ip.dst), ip.data
    payload = hashlib.blake2b(bytes(l4.data) if hasattr(l4, "data") else b"", digest_size=8).digest()
    if isinstance(l4, dpkt.icmp.ICMP):
        kind = ICMP_NAMES.get(l4.type, f"type {l4.type}")
        if l4.type in (0, 8):
            echo = l4.data
            summary = f"ICMP {kind} id {echo.id} seq {echo.seq}"
            identity = ("icmp", ip.id, l4.type, echo.seq, payload)
            endpoints = {("icmp", echo.id, frozenset({src, dst}))}
        else:
            inner = l4.data.data if hasattr(l4.data, "data") else None
            inner_id = inner.id if isinstance(inner, dpkt.ip.IP) else None
            summary = f"ICMP {UNREACHABLE.get(l4.code, kind) if l4.type == 3 else kind}"
            identity = ("icmp", ip.id, l4.type, l4.code, inner_id)
            endpoints = {("icmp-error", frozenset({src, dst}))}
            if isinstance(inner, dpkt.ip.IP):   # an error belongs to the flow it reports on
                endpoints.add(("inner", inner.id))
        return dict(base, protocol="icmp", src=src, dst=dst, sport=None, dport=None, ttl=ip.ttl,
                    summary=summary, identity=identity, endpoints=endpoints, ip_id=ip.id)
    if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        protocol = "tcp" if isinstance(l4, dpkt.tcp.TCP) else "udp"
        if protocol == "tcp":
            flags = "".join(name for bit, name in ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."))
                            if l4.flags & bit)
            summary = f"TCP {l4.sport} > {l4.dport} [{flags}] seq {l4.seq}" + (f" ack {l4.ack}" if l4.flags & 0x10 else "")
            if l4.data:
                summary += f" len {len(l4.data)}"
            identity = ("tcp", ip.id, l4.seq, l4.ack, l4.flags, payload)
            base["tcp"] = (l4.seq, l4.ack, flags, len(l4.data), l4.flags & 0x10)
        else:
            summary = f"UDP {l4.sport} > {l4.dport} len {len(l4.data)}"
            identity = ("udp", ip.id, len(l4.data), payload)
        endpoints = {(protocol, frozenset({(src, l4.sport), (dst, l4.dport)}))}
        return dict(base, protocol=protocol, src=src, dst=dst, sport=l4.sport, dport=l4.dport, ttl=ip.ttl,
                    summary=summary, identity=identity, endpoints=endpoints, ip_id=ip.id)
    return dict(base, protocol=str(ip.p), src=src, dst=dst, sport=None, dport=None, ttl=ip.ttl,
                summary=f"IP protocol {ip.p}", identity=("ip", ip.id, ip.p, payload),
                endpoints={("ip", ip.p, frozenset({src, dst}))}, ip_id=ip.id)


def _vxlan(frame: bytes) -> tuple[int, bytes, dict] | None:
    """(VNI, inner frame, outer fields) when `frame` is IPv4/UDP to a VXLAN port, else None."""
    try:
        eth = dpkt.ethernet.Ethernet(frame)
    except (dpkt.UnpackError, dpkt.NeedData):
        return None
    ip = eth.data
    if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.udp.UDP) or ip.data.dport not in VXLAN_PORTS:
        return None
    payload = bytes(ip.data.data)
    # RFC 7348: flags (the I bit, 0x08, says the VNI is valid), 3 reserved, VNI (24 bits), 1 reserved.
    if len(payload) < 8 + 14 or not payload[0] & 0x08:
        return None
    vni = int.from_bytes(payload[4:7], "big")
    return vni, payload[8:], {"outer_src": _ip(ip.src), "outer_dst": _ip(ip.dst), "outer_ip_id": ip.id,
                              "outer_sport": ip.data.sport, "outer_dport": ip.data.dport}


# -- parsing `nft monitor trace` --------------------------------------------------------

_TRACE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (.*)$")
_FIELDS = {"saddr": r"ip saddr (\S+)", "daddr": r"ip daddr (\S+)", "id": r"ip id (\d+)",
           "icmp_seq": r"icmp sequence (\d+)", "tcp_seq": r"tcp sequence (\d+)",
           "sport": r"(?:tcp|udp) sport (\d+)", "dport": r"(?:tcp|udp) dport (\d+)"}


def netfilter_steps(ns: str, lines: list[str]) -> list[tuple[dict, NetfilterStep]]:
    """Each rule or policy met, with the packet's fields as nft saw them at that hook."""
    steps, packet_of = [], {}
    for line in lines:
        match = _TRACE.match(line.strip())
        if not match:
            continue
        trace_id, family, table, chain, rest = match.groups()
        key = (trace_id, table, chain)
        if rest.startswith("packet: "):
            packet_of[key] = {name: m.group(1) for name, pattern in _FIELDS.items()
                              if (m := re.search(pattern, rest))}
            continue
        if table == "lablib_trace":
            continue   # the trace's own marking rule is plumbing, not a step
        fields = packet_of.get(key) or packet_of.get(next((k for k in reversed(packet_of) if k[0] == trace_id), None), {})
        if rest.startswith("rule "):
            rule = re.sub(r"\s*\(verdict (\w+)\)\s*$", "", rest[5:])
            rule = re.sub(r"counter packets \d+ bytes \d+ ?", "", rule).strip()
            verdict = re.search(r"\(verdict (\w+)\)", rest)
            steps.append((fields, NetfilterStep(ns, family, table, chain, rule, verdict.group(1) if verdict else "")))
        elif rest.startswith("policy "):
            policy = rest.split()[1]
            steps.append((fields, NetfilterStep(ns, family, table, chain, f"policy {policy}", policy)))
        elif rest.startswith("verdict "):
            verdict = rest.split()[1]
            if verdict not in ("continue",):
                steps.append((fields, NetfilterStep(ns, family, table, chain, f"verdict {verdict}", verdict)))
    return steps


# -- putting it together ------------------------------------------------------------------

class Assembly:
    """A trace's raw observations put together: packets hop by hop, their netfilter steps,
    flows, and each packet's fate."""

    def __init__(self, raw: dict):
        self.snapshot: Snapshot = raw["snapshot"]
        self.frames_lost = raw.get("dropped", 0)
        self.packets: list[Packet] = []
        self._raw_frames = raw["frames"]
        self._group(raw["frames"])
        self._attach_netfilter(raw["netfilter"])
        self._flows()
        # A flow's first packet sets its direction: the same source later is not a reply.
        self._opener = {}
        for packet in self.packets:
            self._opener.setdefault(packet.flow, packet)
        self._relative_tcp_numbers()
        for packet in self.packets:
            self._explain(packet)

    # grouping sightings into packets
    def _group(self, frames) -> None:
        by_identity: dict[tuple, Packet] = {}
        self._endpoints: dict[int, set] = {}
        for stamp, ns, interface, pkttype, frame in sorted(frames, key=lambda f: f[0]):
            parsed = parse(frame)
            if parsed is None:
                continue
            hop = Hop(stamp, ns, interface, "out" if pkttype == PKTTYPE_OUTGOING else "in",
                      parsed["eth_src"], parsed["eth_dst"], parsed["protocol"], parsed["src"], parsed["dst"],
                      parsed["sport"], parsed["dport"], parsed["ttl"], parsed["summary"], frame,
                      parsed.get("tcp"), parsed.get("outer_src"), parsed.get("outer_dst"), parsed.get("vni"))
            packet = by_identity.get(parsed["identity"])
            # A packet never crosses one interface the same way twice: a second sighting
            # there is a retransmission (an ARP request asked again), so a packet of its own.
            seen_here = packet is not None and any(
                (h.ns, h.interface, h.direction) == (ns, interface, hop.direction) for h in packet.hops)
            if packet is None or seen_here or stamp - packet.hops[-1].time > 2_000_000_000:
                packet = Packet(len(self.packets) + 1, parsed["identity"])
                by_identity[parsed["identity"]] = packet
                self.packets.append(packet)
                self._endpoints[packet.number] = set()
            packet.hops.append(hop)
            self._endpoints[packet.number] |= parsed["endpoints"]
            if "ip_id" in parsed:
                self._endpoints[packet.number].add(("ip_id", parsed["ip_id"]))
            if "outer_ip_id" in parsed:   # netfilter saw the outer datagram: match it too
                self._endpoints[packet.number].add(("ip_id", parsed["outer_ip_id"]))

    def _attach_netfilter(self, netfilter: dict[str, list[str]]) -> None:
        for ns, lines in netfilter.items():
            for fields, step in netfilter_steps(ns, lines):
                packet = self._match(ns, fields)
                if packet is not None:
                    packet.netfilter.append(step)

    def _match(self, ns: str, fields: dict) -> Packet | None:
        if "id" not in fields:
            return None
        for packet in self.packets:
            if packet.first.protocol == "arp" or not any(hop.ns == ns for hop in packet.hops):
                continue
            if ("ip_id", int(fields["id"])) not in self._endpoints[packet.number]:
                continue
            seen = {hop.addresses[0] for hop in packet.hops} | {hop.addresses[2] for hop in packet.hops}
            seen |= {address for hop in packet.hops for address in (hop.outer_src, hop.outer_dst) if address}
            if fields.get("saddr") in seen or fields.get("daddr") in seen:
                return packet
        return None

    def _flows(self) -> None:
        """Packets that share endpoints (as seen at some hop) belong to one flow."""
        parent = list(range(len(self.packets) + 1))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        owner: dict = {}
        for packet in self.packets:
            for key in self._endpoints[packet.number]:
                if key[0] == "ip_id":
                    continue
                if key[0] == "inner":   # an ICMP error joins the packet it quotes
                    key = ("ip_id", key[1])
                    for other in self.packets:
                        if other is not packet and key in self._endpoints[other.number]:
                            parent[root(packet.number)] = root(other.number)
                    continue
                if key in owner:
                    parent[root(packet.number)] = root(owner[key])
                else:
                    owner[key] = packet.number
        numbers: dict[int, int] = {}
        for packet in self.packets:
            packet.flow = numbers.setdefault(root(packet.number), len(numbers) + 1)

    def _is_opening_side(self, packet: Packet) -> bool:
        opener = self._opener[packet.flow].first
        return (packet.first.ns, packet.first.src) == (opener.ns, opener.src)

    def _relative_tcp_numbers(self) -> None:
        """TCP sequence numbers counted from each side's first, as tcpdump and Wireshark
        show them: seq 1 ack 1 reads better than 2903410571 (and is the same every run)."""
        starts: dict[tuple[int, bool], int] = {}
        for packet in self.packets:
            if packet.first.tcp is not None:
                starts.setdefault((packet.flow, self._is_opening_side(packet)), packet.first.tcp[0])
        for packet in self.packets:
            if packet.first.tcp is None:
                continue
            side = self._is_opening_side(packet)
            for hop in packet.hops:
                seq, ack, flags, length, acked = hop.tcp
                seq -= starts[(packet.flow, side)]
                hop.summary = f"TCP {hop.sport} > {hop.dport} [{flags}] seq {seq % 2**32}"
                if acked and (packet.flow, not side) in starts:
                    hop.summary += f" ack {(ack - starts[(packet.flow, not side)]) % 2**32}"
                if length:
                    hop.summary += f" len {length}"

    # fate and rewrites
    def _owner(self, address: str) -> str | None:
        for ns in self.snapshot.namespaces.values():
            if self._owns(ns.name, address):
                return ns.name
        return None

    def _owns(self, ns: str, address: str) -> bool:
        """Whether `address` is local to namespace `ns` (loopback is local everywhere)."""
        import ipaddress
        if ipaddress.ip_address(address).is_loopback:
            return True
        namespace = self.snapshot.namespaces.get(ns)
        return namespace is not None and any(
            a.split("/")[0] == address for link in namespace.links for a in link.addresses)

    def _explain(self, packet: Packet) -> None:
        by_ns: dict[str, list[Hop]] = {}
        for hop in packet.hops:
            by_ns.setdefault(hop.ns, []).append(hop)
        for ns, hops in by_ns.items():
            arrived = next((h for h in hops if h.direction == "in"), None)
            left = next((h for h in reversed(hops) if h.direction == "out"), None)
            if arrived and left and arrived.time <= left.time and arrived.addresses != left.addresses:
                rewrites = self._describe_rewrite(packet, ns, arrived, left)
                packet.changes[ns] = "; ".join(text for _hop, text in rewrites)
                for hop, text in rewrites:
                    index = next(i for i, h in enumerate(packet.hops) if h is hop)
                    packet.changes_at[index] = "; ".join(filter(None, (packet.changes_at.get(index), text)))
        last = packet.hops[-1]
        if last.protocol == "arp":
            packet.fate = "broadcast on the link" if last.eth_dst == "ff:ff:ff:ff:ff:ff" else "delivered"
            return
        owner = self._owner(last.dst)
        here = [step for step in packet.netfilter if step.ns == last.ns]
        dropped_by_rule = any(step.verdict.lower() == "drop" for step in here)
        redirected = any(step.nat in ("DNAT", "REDIRECT") for step in here)   # meant for elsewhere now
        local = self._owns(last.ns, last.dst) or last.dst.startswith(("224.", "255.")) or last.dst.endswith(".255")
        if last.direction == "in" and local and not dropped_by_rule and not redirected:
            packet.fate = f"delivered to {last.ns}"
            return
        if last.direction == "out" and not dropped_by_rule:
            packet.fate = "left the traced namespaces" if owner is None else f"sent towards {last.dst}"
            return
        packet.dropped_in = last.ns
        packet.fate = f"dropped in {last.ns}: {self._why_dropped(packet, last)}"

    def _describe_rewrite(self, packet: Packet, ns: str, arrived: Hop, left: Hop) -> list[tuple[Hop, str]]:
        """What changed between arriving in `ns` and leaving it, which rule did it, and at
        which hop's hook: netfilter rewrites a destination in PREROUTING, as the packet
        arrives, and a source in POSTROUTING, as it leaves. Conntrack undoes a NAT for a
        reply at the same hooks: a masqueraded connection's reply gets its destination
        back in PREROUTING, a DNATed connection's reply its source back in POSTROUTING."""
        steps = [step for step in packet.netfilter if step.ns == ns and step.nat]
        parts = []
        for label, before, after, kinds, hook, hop in (
                ("source", (arrived.src, arrived.sport), (left.src, left.sport), ("MASQUERADE", "SNAT"),
                 "POSTROUTING", left),
                ("destination", (arrived.dst, arrived.dport), (left.dst, left.dport), ("DNAT", "REDIRECT"),
                 "PREROUTING", arrived)):
            if before == after:
                continue
            change = f"{label} {_endpoint(*before)} → {_endpoint(*after)}"
            rule = next((step for step in steps if step.nat in kinds), None)
            where = f"{hook} on {hop.interface}"
            if rule is not None:
                parts.append((hop, f"{rule.nat} at {rule.chain}: {change}"))
            elif self._is_opening_side(packet):
                parts.append((hop, f"NAT by conntrack at {where} (as the connection's first packet was): {change}"))
            else:
                parts.append((hop, f"reverse NAT by conntrack at {where} (a reply): {change}"))
        return parts

    def _why_dropped(self, packet: Packet, last: Hop) -> str:
        for step in packet.netfilter:
            if step.ns == last.ns and step.verdict.lower() == "drop":
                if step.rule.startswith("policy"):
                    return f"{step.chain} policy {step.verdict.upper()}"
                return f"rule in {step.table} {step.chain}: {step.rule}"
        dnat = next((step for step in packet.netfilter if step.ns == last.ns and step.nat == "DNAT"), None)
        if dnat is not None:
            return (f"rewritten by {dnat.chain} DNAT ({dnat.rule}), then it went no further "
                    "(sent back out the port it came in by? a bridge does not do that without hairpin)")
        too_big = self._too_big_for_bridge(last)
        if too_big:
            return too_big
        ns = self.snapshot.namespaces.get(last.ns)
        if ns is not None and ns.sysctls.get("net.ipv4.ip_forward") == "0":
            return "not forwarded: net.ipv4.ip_forward is 0 here"
        if ns is not None and not _routed(ns.routes, last.dst):
            return f"no route to {last.dst}"
        return "it went no further (no reply, or a rule without a trace)"


    def _too_big_for_bridge(self, last: Hop) -> str | None:
        """A bridge drops, without a word, a frame larger than the MTU of the port it
        should leave by (an ICMP "fragmentation needed" comes only from a router)."""
        if last.direction != "in" or not last.frame:
            return None
        link = self.snapshot.link(last.ns, last.interface)
        if link is None or not link.master:
            return None
        size = len(last.frame) - 14     # what an MTU counts: the IP packet, not the Ethernet header
        smaller = [port for port in self.snapshot.ports(last.ns, link.master)
                   if port.name != link.name and port.mtu and port.mtu < size]
        if not smaller:
            return None
        port = min(smaller, key=lambda p: p.mtu)
        return (f"too big for the bridge {link.master}: {size} bytes, but its port {port.name} has MTU "
                f"{port.mtu} (a bridge drops larger frames silently; lower the sender's MTU)")


def _endpoint(address: str, port: int | None) -> str:
    return f"{address}:{port}" if port is not None else address


def _routed(routes, address: str) -> bool:
    import ipaddress
    target = ipaddress.ip_address(address)
    for route in routes:
        if route.dst == "default" or target in ipaddress.ip_network(route.dst, strict=False):
            if route.type == "unicast":
                return True
    return False
