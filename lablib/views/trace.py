"""`with lab.trace("icmp") as t: ...` — where did my packet go, and what happened to it?

A TraceResult shows an assembled trace (trace_assembly.py) as a table, its flows, a
path drawn over the topology, a sequence diagram, or a pcap file.
"""
from __future__ import annotations

import dpkt
import pandas as pd

from ..model.packets import Packet
from ..model.state import Snapshot
from . import tracedraw
from .trace_assembly import Assembly
from .tracedraw import SequenceView


class TraceResult:
    """Every packet a trace saw, hop by hop, grouped into flows."""

    def __init__(self, raw: dict, expression: str):
        self.expression = expression
        assembled = Assembly(raw)
        self.snapshot: Snapshot = assembled.snapshot
        self.packets: list[Packet] = assembled.packets
        self._raw_frames = raw["frames"]

    def table(self) -> pd.DataFrame:
        """One row per hop of every packet (and one per drop), in the order they happened.

        When a packet crossed a tunnel, its hops on the underlay also show the outer
        header ("outer src", "outer dst") and the VXLAN network identifier ("vni")."""
        start = min((p.first.time for p in self.packets), default=0)
        rows = []
        for packet in self.packets:
            # Netfilter steps go on the packet's last sighting in each namespace; each rewrite on
            # the hop whose hook made it (a destination where it arrived, a source where it left).
            last_in_ns = {hop.ns: index for index, hop in enumerate(packet.hops)}
            for number, hop in enumerate(packet.hops, 1):
                closing = last_in_ns[hop.ns] == number - 1
                steps = [s for s in packet.netfilter if s.ns == hop.ns] if closing else []
                rows.append({
                    "flow": packet.flow, "packet": packet.number, "hop": number,
                    "time (ms)": round((hop.time - start) / 1e6, 3), "ns": hop.ns, "interface": hop.interface,
                    "direction": hop.direction, "summary": hop.summary,
                    "eth src": hop.eth_src, "eth dst": hop.eth_dst, "src": hop.src, "dst": hop.dst,
                    "sport": hop.sport, "dport": hop.dport, "ttl": hop.ttl,
                    "outer src": hop.outer_src, "outer dst": hop.outer_dst, "vni": hop.vni,
                    "netfilter": "; ".join(str(s) for s in steps),
                    "change": packet.changes_at.get(number - 1, ""),
                })
            if packet.dropped_in:
                rows.append({"flow": packet.flow, "packet": packet.number, "hop": len(packet.hops) + 1,
                             "ns": packet.dropped_in, "direction": "dropped",
                             "summary": "✗ " + packet.fate})
        tunnelled = any(hop.encapsulated for packet in self.packets for hop in packet.hops)
        frame = pd.DataFrame(rows, columns=["flow", "packet", "hop", "time (ms)", "ns", "interface", "direction",
                                            "summary", "eth src", "eth dst", "src", "dst", "sport", "dport", "ttl",
                                            "netfilter", "change"]
                             + (["outer src", "outer dst", "vni"] if tunnelled else []))
        for column in ("sport", "dport", "ttl", "hop") + (("vni",) if tunnelled else ()):
            frame[column] = frame[column].astype("Int64")
        return frame

    def flows(self) -> pd.DataFrame:
        """One row per flow: what it was, its packets, and how each ended."""
        rows = []
        for flow in sorted({p.flow for p in self.packets}):
            members = [p for p in self.packets if p.flow == flow]
            rows.append({"flow": flow, "protocol": members[0].first.protocol,
                         "first packet": members[0].summary, "packets": len(members),
                         "from": f"{members[0].first.src} ({members[0].first.ns})",
                         "to": members[0].first.dst,
                         "fates": "; ".join(sorted({p.fate for p in members}))})
        return pd.DataFrame(rows, columns=["flow", "protocol", "first packet", "packets", "from", "to", "fates"])

    def save(self, path: str) -> str:
        """Write every captured frame to a pcap file Wireshark opens; returns the path."""
        with open(path, "wb") as f:
            writer = dpkt.pcap.Writer(f, nano=True)
            for stamp, _ns, _interface, _pkttype, frame in sorted(self._raw_frames, key=lambda f: f[0]):
                writer.writepkt(frame, ts=stamp / 1e9)
        return path

    def graph(self, flow: int | None = None, *, world: bool = True):
        """The topology with the path drawn on it: numbered hops along the cables, the
        rewrites where they happen, and a red ✗ where a packet died."""
        packets = [p for p in self.packets if flow is None or p.flow == flow]
        return tracedraw.draw_path(self.snapshot, packets, world=world)

    def sequence(self, flow: int | None = None) -> "SequenceView":
        """Request and reply as a sequence diagram: namespaces across, time down."""
        return tracedraw.sequence([p for p in self.packets if flow is None or p.flow == flow])

    def __repr__(self) -> str:
        flows = len({p.flow for p in self.packets})
        return f"<trace '{self.expression}': {len(self.packets)} packets in {flows} flows>"
