"""A trace drawn two ways: its path over the topology, and as a sequence diagram."""
from __future__ import annotations

import html

from ..model.packets import Hop, Packet
from ..model.state import HOST, Snapshot
from .drawing import Overlay, draw


class SequenceView:
    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html

def _crossings(snapshot: Snapshot, packet: Packet):
    """Each step a packet took between two sightings: over a veth cable, through a bridge,
    or through a tunnel (from the VXLAN device that wrapped it to the one that unwrapped
    it), with the number (as in TraceResult.table()) of the hop it arrived at."""
    for number, (before, after) in enumerate(zip(packet.hops, packet.hops[1:]), 2):
        one, other = snapshot.link(before.ns, before.interface), snapshot.link(after.ns, after.interface)
        if one is None or other is None:
            continue
        if one.vxlan is not None and before.direction == "out":
            index = number - 1   # `after` is packet.hops[index]
            end = next(((position, hop) for position, hop in enumerate(packet.hops[index:], index + 1)
                        if hop.ns != before.ns and hop.direction == "in"
                        and (link := snapshot.link(hop.ns, hop.interface)) is not None and link.vxlan is not None),
                       None)
            if end is not None:
                yield "tunnel", before, end[1], end[0]
        if before.direction == "out" and after.direction == "in" and one.peer == other.key:
            yield "cable", before, after, number
        elif before.ns == after.ns and _through_bridge(one, other):
            yield "bridge", before, after, number


def _through_bridge(one, other) -> bool:
    """Two sightings in one namespace joined by a bridge: port to port, or bridge to port."""
    return (bool(one.master) and one.master in (other.master, other.name)) or \
        (bool(other.master) and other.master == one.name)


def overlay_for(snapshot: Snapshot, packets: list[Packet]) -> Overlay:
    overlay = Overlay()
    for packet in sorted(packets, key=lambda p: p.first.time):
        for kind, before, after, hop in _crossings(snapshot, packet):
            step = f"{packet.number}.{hop}"
            overlay.visited |= {(before.ns, before.interface), (after.ns, after.interface)}
            if kind == "tunnel":
                overlay.tunnel_steps.setdefault(frozenset({(before.ns, before.interface),
                                                           (after.ns, after.interface)}), []).append(step)
            elif kind == "cable":
                overlay.cable_steps.setdefault(frozenset({(before.ns, before.interface),
                                                          (after.ns, after.interface)}), []).append(step)
            else:
                for hop in (before, after):
                    link = snapshot.link(hop.ns, hop.interface)
                    steps = overlay.port_steps.setdefault(link.key, []) if link is not None and link.master else None
                    if steps is not None and step not in steps:   # a hairpin turns on one port: once
                        steps.append(step)
        for ns, change in packet.changes.items():
            overlay.notes.setdefault(ns, []).append(f"packet {packet.number}: {change}")
        if packet.dropped_in:
            overlay.died_at.add((packet.hops[-1].ns, packet.hops[-1].interface))
            overlay.drops.setdefault(packet.dropped_in, []).append(
                f"✗ packet {packet.number} ({packet.summary}) {packet.fate.split(': ', 1)[-1]}")
    return overlay


def draw_path(snapshot: Snapshot, packets: list[Packet], *, world: bool = True):
    """The topology with the packets' path on it."""
    visited = {hop.ns for packet in packets for hop in packet.hops}
    outside = world and any(ns.startswith("world:") for ns in visited)
    if outside:   # draw the outside hosts the path went through, not all of them
        shown = {name: ns for name, ns in snapshot.namespaces.items()
                 if not name.startswith("world:") or name in visited}
        snapshot = Snapshot(shown, snapshot.taken, snapshot.seconds)
    drawing = draw(snapshot, None, world=world, overlay=overlay_for(snapshot, packets), expand_world=outside)
    drawing.attr(label="#P.H on a cable: packet P arrived there as hop H (the table's packet and hop)",
                 labelloc="b", labeljust="l", fontsize="9", fontcolor="#6a1b9a")
    return drawing


def sequence(packets: list[Packet]) -> SequenceView:
    """Namespaces across, time going down; each arrow one hop between namespaces."""
    columns: list[str] = []
    for packet in packets:
        for hop in packet.hops:
            if hop.ns not in columns:
                columns.append(hop.ns)
    rows = []
    for packet in sorted(packets, key=lambda p: p.first.time):
        previous: Hop | None = None
        for hop in packet.hops:
            if previous is not None and previous.ns != hop.ns:
                rows.append(_arrow(columns, previous, hop, packet))
            previous = hop
        for ns, change in packet.changes.items():
            rows.append(_note(columns, ns, f"packet {packet.number}: {change}", "#1565c0"))
        if packet.dropped_in:
            rows.append(_note(columns, packet.dropped_in, f"✗ packet {packet.number} {packet.fate}", "#c62828"))
    head = "".join(f"<th style='text-align:center'>{html.escape('lab host' if c == HOST else c)}</th>"
                   for c in columns)
    body = "".join(rows) or f"<tr><td colspan='{len(columns) or 1}'>no packets</td></tr>"
    return SequenceView(f"<table style='border-collapse:collapse'><tr>{head}</tr>{body}</table>")


def _arrow(columns: list[str], start: Hop, end: Hop, packet: Packet) -> str:
    a, b = columns.index(start.ns), columns.index(end.ns)
    left, right = min(a, b), max(a, b)
    arrow = "──────▶" if b > a else "◀──────"
    label = (f"#{packet.number} {html.escape(end.summary)}<br/><small>{html.escape(end.src)} → "
             f"{html.escape(end.dst)} · {html.escape(start.interface)} → {html.escape(end.interface)}</small>")
    if end.encapsulated:
        label += (f"<br/><small>wrapped in UDP {html.escape(str(end.outer_src))} → "
                  f"{html.escape(str(end.outer_dst))}, VNI {end.vni}</small>")
    cells = "<td></td>" * left
    cells += (f"<td colspan='{right - left + 1}' style='text-align:center;border-left:1px dotted #999;"
              f"border-right:1px dotted #999'>{label}<br/>{arrow}</td>")
    cells += "<td></td>" * (len(columns) - right - 1)
    return f"<tr>{cells}</tr>"


def _note(columns: list[str], ns: str, text: str, color: str) -> str:
    at = columns.index(ns) if ns in columns else 0
    cells = "<td></td>" * at + f"<td style='color:{color};text-align:center'><small>{html.escape(text)}</small></td>"
    cells += "<td></td>" * (len(columns) - at - 1)
    return f"<tr>{cells}</tr>"
