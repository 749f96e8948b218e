"""Draw a Snapshot: namespaces as boxes, interfaces inside them, veth pairs as cables,
bridges as switches with their ports, the outside world as a cloud. A namespace acting
as a host (its containers' veths lead to its bridge) is a box holding its containers'
boxes, and VXLAN devices that send to each other are joined by a tunnel.

Only what the kernel reported is drawn — never a declared topology. Compared with the
previous drawing, what is new is drawn in blue and what went away is left as a red
ghost. Past a dozen containers, containers that look alike are collapsed into one box.
Labels carry no MAC addresses or link-local IPv6 (the tables have them), so the same
network always gives the same drawing.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import graphviz

from ..model.state import HOST, Link, Namespace, Snapshot
from ..model.world import CLIENT, DNS, GATEWAY, UPLINK, WEB

FONT = "Helvetica"
NEW, GONE, TEXT, MUTED = "#1565c0", "#c62828", "#212121", "#9e9e9e"
STATE_STYLE = {   # state -> (fill, border, border style)
    "UP": ("#e8f5e9", "#2e7d32", "solid"),
    "DOWN": ("#f5f5f5", MUTED, "dashed"),
    "NO-CARRIER": ("#fff3e0", "#ef6c00", "solid"),
}
CLOUD = "outside_world"


@dataclass
class Overlay:
    """A path drawn over the topology (see tracedraw.py)."""
    cable_steps: dict[frozenset, list[int]] = field(default_factory=dict)   # veth pair -> step numbers
    port_steps: dict[tuple[str, str], list[int]] = field(default_factory=dict)   # bridge port -> steps
    notes: dict[str, list[str]] = field(default_factory=dict)    # namespace -> rewrites seen there
    drops: dict[str, list[str]] = field(default_factory=dict)    # namespace -> packets that died there
    tunnel_steps: dict[frozenset, list[int]] = field(default_factory=dict)   # two VXLAN devices -> steps
    visited: set[tuple[str, str]] = field(default_factory=set)   # interfaces the path crossed
    died_at: set[tuple[str, str]] = field(default_factory=set)   # interfaces where a packet was last seen


@dataclass
class Changes:
    """What differs from the previous drawing."""
    new_links: set[tuple[str, str]] = field(default_factory=set)
    new_addresses: set[tuple[str, str, str]] = field(default_factory=set)
    changed_state: set[tuple[str, str]] = field(default_factory=set)
    gone_links: list[Link] = field(default_factory=list)
    new_namespaces: set[str] = field(default_factory=set)
    gone_namespaces: list[str] = field(default_factory=list)

    @classmethod
    def between(cls, before: Snapshot | None, after: Snapshot) -> "Changes":
        changes = cls()
        if before is None:
            return changes
        old = {link.key: link for link in before.links()}
        new = {link.key: link for link in after.links()}
        for key, link in new.items():
            if key not in old:
                changes.new_links.add(key)
                continue
            if old[key].state != link.state:
                changes.changed_state.add(key)
            for address in set(link.addresses) - set(old[key].addresses):
                changes.new_addresses.add((*key, address))
        changes.gone_links = [link for key, link in old.items() if key not in new and key[0] in after.namespaces]
        changes.new_namespaces = {name for name in after.namespaces if name not in before.namespaces}
        changes.gone_namespaces = [name for name in before.namespaces if name not in after.namespaces]
        return changes


def _link_label(link: Link, changes: Changes, ghost: bool = False) -> str:
    name = html.escape(link.name)
    kind = "" if link.kind in ("device",) else f" <font point-size='9'>{link.kind}</font>"
    if ghost:
        return f"<<s>{name}</s><br/><font point-size='9'>removed</font>>"
    rows = [f"<b>{name}</b>{kind}"]
    state_color = {"UP": "#2e7d32", "DOWN": MUTED, "NO-CARRIER": "#ef6c00"}[link.state]
    rows.append(f"<font point-size='9' color='{state_color}'>{link.state}</font>")
    for address in link.notable_addresses:
        fresh = (link.ns, link.name, address) in changes.new_addresses
        text = html.escape(address)
        rows.append(f"<font color='{NEW}'><b>+ {text}</b></font>" if fresh else text)
    return "<" + "<br/>".join(rows) + ">"


class Drawing:
    """Builds the graphviz source for one snapshot."""

    def __init__(self, snapshot: Snapshot, previous: Snapshot | None, routes: bool, world: bool,
                 collapse_after: int, overlay: Overlay | None = None, expand_world: bool = False):
        self.snapshot, self.routes, self.world = snapshot, routes, world
        self.overlay, self.expand_world = overlay or Overlay(), expand_world
        self.changes = Changes.between(previous, snapshot)
        self.collapse_after = collapse_after
        self.graph = graphviz.Digraph("lab", engine="dot")
        self.graph.attr(rankdir="LR", fontname=FONT, fontsize="11", newrank="true", nodesep="0.25",
                        ranksep="0.6", compound="true")
        self.graph.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled")
        self.graph.attr("edge", fontname=FONT, fontsize="9", dir="none")
        self._collapsed: dict[str, str] = {}   # namespace -> the summary node standing in for it
        self._port_groups: dict[str, tuple[list[str], str]] = {}   # summary -> (host ports, bridge)
        self._parent = snapshot.hosted()     # container -> the namespace acting as its host
        self._children: dict[str, list[str]] = {}
        for child, parent in self._parent.items():
            self._children.setdefault(parent, []).append(child)

    @staticmethod
    def node_id(ns: str, name: str) -> str:
        """Readable, stable ids ("c1/eth0"), so a drawing's source can be read and tested.
        (A colon would be read as a graphviz port, so none may appear.)"""
        return f"{ns}/{name}".replace(":", "_")

    def build(self) -> graphviz.Digraph:
        namespaces = [ns for name, ns in self.snapshot.namespaces.items()
                      if self.expand_world or not name.startswith("world:")]
        containers = [ns for ns in namespaces if ns.role == "container" and ns.name not in self._parent]
        shown, groups = self._collapse(containers)
        for group in groups:
            self._summary(group)
        if HOST in self.snapshot.namespaces:
            self._namespace(self.snapshot.namespaces[HOST])
        for ns in shown:
            self._namespace(ns)   # a host draws its containers inside its own box
        for ns in namespaces:
            if ns.role == "outside":
                self._namespace(ns)
        for name in self.changes.gone_namespaces:
            self._ghost_namespace(name)
        self._cables()
        self._tunnels()
        if self.world and not self.expand_world:
            self._cloud()
        return self.graph

    # -- boxes ---------------------------------------------------------------------
    def _namespace(self, ns: Namespace, parent=None) -> None:
        title = {"host": "lab host (host network namespace)", "container": f"netns {ns.name}",
                 "outside": f"outside world: {ns.name.removeprefix('world:')}"}[ns.role]
        fill = {"host": "#fafafa", "container": "#fffde7", "outside": "#e1f5fe"}[ns.role]
        if ns.name in self._children:
            title, fill = f"{ns.name}: netns acting as a host", "#f3e5f5"
        elif ns.role == "host" and self._children:
            title = "lab host (host network namespace): the hosts' LAN and its router"
        fresh = ns.name in self.changes.new_namespaces
        with (parent or self.graph).subgraph(name=f"cluster {ns.name}") as box:
            box.attr(label=title, labeljust="l", style="rounded,filled" + (",bold" if fresh else ""),
                     fillcolor=fill, color=NEW if fresh else "#616161", penwidth="2" if fresh else "1")
            for child in self._children.get(ns.name, []):
                if child in self.snapshot.namespaces:
                    self._namespace(self.snapshot.namespaces[child], box)
            for link in ns.links:
                if not self._is_collapsed_port(link):
                    self._interface(box, link)
            if ns.role == "host":
                for summary, (ports, _bridge) in self._port_groups.items():
                    box.node(f"{summary}_ports", f"<<b>{len(ports)} more ports</b><br/>{html.escape(ports[0])} … "
                                                 f"{html.escape(ports[-1])}>", shape="folder",
                             fillcolor="#e8f5e9", color="#2e7d32")
            for link in self.changes.gone_links:
                if link.ns == ns.name:
                    box.node(self.node_id(link.ns, link.name), _link_label(link, self.changes, ghost=True),
                             style="rounded,dashed", color=GONE, fontcolor=GONE, fillcolor="white")
            for kind, texts, color in (("#notes", self.overlay.notes.get(ns.name), NEW),
                                       ("#drops", self.overlay.drops.get(ns.name), GONE)):
                if texts:
                    box.node(self.node_id(ns.name, kind), "<" + "<br/>".join(html.escape(t) for t in texts) + ">",
                             shape="note", style="filled", fillcolor="white", color=color, fontcolor=color,
                             fontsize="9")
            if self.routes and ns.routes:
                rows = "".join(
                    f"<tr><td align='left'>{html.escape(r.dst)}</td><td align='left'>"
                    f"{'via ' + r.gateway if r.gateway else 'connected'}</td>"
                    f"<td align='left'>dev {html.escape(r.dev or '-')}</td></tr>" for r in ns.routes)
                box.node(self.node_id(ns.name, "#routes"),
                         f"<<table border='0' cellspacing='0' cellpadding='1'><tr><td colspan='3' align='left'>"
                         f"<b>routes</b></td></tr>{rows}</table>>", shape="note", style="filled",
                         fillcolor="white", fontsize="9")

    def _interface(self, box, link: Link) -> None:
        fill, border, line = STATE_STYLE[link.state]
        attributes = dict(fillcolor=fill, color=border, style=f"rounded,filled,{line}",
                          fontcolor=TEXT if link.state != "DOWN" else "#757575")
        if link.kind == "bridge":
            attributes.update(shape="box3d", style=f"filled,{line}", fillcolor="#e3f2fd")
        if link.key in self.changes.new_links or link.key in self.changes.changed_state:
            attributes.update(color=NEW, penwidth="3")
        if link.key in self.overlay.visited:
            attributes.update(color="#6a1b9a", penwidth="3")
        if link.key in self.overlay.died_at:
            attributes.update(color=GONE, penwidth="4", xlabel="✗")
        box.node(self.node_id(*link.key), _link_label(link, self.changes), **attributes)

    def _ghost_namespace(self, name: str) -> None:
        with self.graph.subgraph(name=f"cluster {name}") as box:
            box.attr(label=f"netns {name} (deleted)", style="rounded,dashed", color=GONE, fontcolor=GONE)
            box.node(self.node_id(name, "#gone"), "", shape="point", style="invis")

    # -- collapsing what repeats ------------------------------------------------------
    def _collapse(self, containers: list[Namespace]) -> tuple[list[Namespace], list[list[Namespace]]]:
        if len(containers) <= self.collapse_after:
            return containers, []
        by_shape: dict[tuple, list[Namespace]] = {}
        for ns in containers:
            by_shape.setdefault(self._shape(ns), []).append(ns)
        shown, groups = [], []
        for shape, members in by_shape.items():
            changed = [ns for ns in members if self._changed(ns)]
            plain = [ns for ns in members if not self._changed(ns)]
            if shape is None or len(plain) <= 3:
                shown += members
                continue
            shown += plain[:2] + changed + plain[-1:]
            groups.append(plain[2:-1])
        return shown, groups

    def _shape(self, ns: Namespace) -> tuple | None:
        """Containers with the same shape (lo + one veth to the same bridge) collapse together."""
        veths = [link for link in ns.links if link.kind == "veth"]
        if len(ns.links) != 2 or len(veths) != 1 or veths[0].peer is None:
            return None
        peer = self.snapshot.link(*veths[0].peer)
        return (veths[0].name, veths[0].state, peer.ns, peer.master) if peer and peer.master else None

    def _changed(self, ns: Namespace) -> bool:
        return any(link.key in self.changes.new_links or link.key in self.changes.changed_state
                   for link in ns.links)

    def _summary(self, group: list[Namespace]) -> None:
        """One box for a run of look-alike containers, and one for their ports on the host."""
        first, last = group[0].name, group[-1].name
        veth = next(link for link in group[0].links if link.kind == "veth")
        bridge = self.snapshot.link(*veth.peer).master
        node = f"group/{first}"
        self.graph.node(node, f"<<b>{len(group)} more containers</b><br/>{html.escape(first)} … "
                              f"{html.escape(last)}<br/><font point-size='9'>each {html.escape(veth.name)}"
                              f" on {html.escape(bridge)}</font>>",
                        shape="folder", fillcolor="#fffde7", color="#616161")
        ports = []
        for ns in group:
            self._collapsed[ns.name] = node
            veth = next(link for link in ns.links if link.kind == "veth")
            ports.append(veth.peer[1])
        self._port_groups[node] = (ports, bridge)

    # -- cables ------------------------------------------------------------------------
    def _end(self, link: Link) -> str | None:
        if link.ns in self._collapsed:
            return self._collapsed[link.ns]
        if link.ns not in self.snapshot.namespaces or (link.ns.startswith("world:") and not self.expand_world):
            return None
        return self.node_id(*link.key)

    def _cables(self) -> None:
        for one, other in self.snapshot.veth_pairs():
            if one.ns in self._collapsed or other.ns in self._collapsed:
                continue   # drawn once per group, below
            a, b = self._end(one), self._end(other)
            if a is None or b is None:
                continue
            fresh = one.key in self.changes.new_links or other.key in self.changes.new_links
            if (one.ns == HOST and other.ns != HOST and not other.ns.startswith("world:")) or one.ns.startswith("world:") \
                    or self._parent.get(other.ns) == one.ns:
                a, b = b, a     # left to right: container, host, outside (dot ranks by direction)
            steps = self.overlay.cable_steps.get(frozenset({one.key, other.key}))
            if steps:
                self.graph.edge(a, b, label="veth  " + _steps(steps), penwidth="3.5", color="#6a1b9a",
                                fontcolor="#6a1b9a")
            else:
                self.graph.edge(a, b, label="veth", penwidth="2.5", color=NEW if fresh else "#424242")
        for summary, (ports, bridge) in self._port_groups.items():
            self.graph.edge(summary, f"{summary}_ports", label=f"{len(ports)} veth pairs", penwidth="2.5",
                            style="dashed", color="#424242")
            self.graph.edge(f"{summary}_ports", self.node_id(HOST, bridge), label="ports", style="bold",
                            color="#5c6bc0")
        for link in self.snapshot.links():
            if link.master and link.ns not in self._collapsed:
                port, bridge = self._end(link), self.node_id(link.ns, link.master)
                if port is None or self._is_collapsed_port(link):
                    continue
                fresh = link.key in self.changes.new_links
                steps = self.overlay.port_steps.get(link.key)
                if steps:
                    self.graph.edge(port, bridge, label="port  " + _steps(steps), style="bold", penwidth="3",
                                    color="#6a1b9a", fontcolor="#6a1b9a")
                else:
                    self.graph.edge(port, bridge, label="port", style="bold", color=NEW if fresh else "#5c6bc0")
        # Routed traffic leaves a bridge through the uplink: keep the uplink right of bridges.
        for name in [HOST, *self._children]:
            if self.snapshot.link(name, UPLINK) is not None and name in self.snapshot.namespaces:
                for bridge in (link for link in self.snapshot.namespaces[name].links if link.kind == "bridge"):
                    self.graph.edge(self.node_id(name, bridge.name), self.node_id(name, UPLINK), style="invis")

    def _tunnels(self) -> None:
        """A VXLAN device sends to the hosts its FDB names (`bridge fdb append ... dst HOST`):
        draw a tunnel to the VXLAN device of each such host that is in this lab."""
        owner = {address.split("/")[0]: ns.name for ns in self.snapshot.namespaces.values()
                 for link in ns.links for address in link.addresses}
        devices = [link for link in self.snapshot.links() if link.vxlan is not None]
        sends: dict[tuple, set[tuple]] = {}
        for link in devices:
            for remote in link.vxlan.get("remotes", []):
                for other in devices:
                    if other.ns == owner.get(remote) and other.ns != link.ns:
                        sends.setdefault(link.key, set()).add(other.key)
        drawn = set()
        for one_key, others in sends.items():
            for other_key in others:
                pair = frozenset({one_key, other_key})
                if pair in drawn:
                    continue
                drawn.add(pair)
                one, other = self.snapshot.link(*one_key), self.snapshot.link(*other_key)
                both_ways = one_key in sends.get(other_key, set())
                same = one.vxlan["id"] == other.vxlan["id"] and one.vxlan["dstport"] == other.vxlan["dstport"]
                label = (f"VXLAN {one.vxlan['id']} tunnel (UDP {one.vxlan['dstport']})" if same else
                         f"VXLAN {one.vxlan['id']} / {other.vxlan['id']}: "
                         f"UDP {one.vxlan['dstport']} / {other.vxlan['dstport']} (they differ)")
                if not both_ways:
                    label += f", one way: {other.ns} has no FDB entry for {one.ns}"
                steps = self.overlay.tunnel_steps.get(pair)
                color = "#6a1b9a" if steps else ("#00838f" if same and both_ways else GONE)
                self.graph.edge(self.node_id(*one_key), self.node_id(*other_key),
                                label=label + ("  " + _steps(steps) if steps else ""), style="dashed",
                                penwidth="3.5" if steps else "2.5", color=color, fontcolor=color,
                                constraint="false")
    def _is_collapsed_port(self, link: Link) -> bool:
        return link.peer is not None and link.peer[0] in self._collapsed

    def _cloud(self) -> None:
        label = ("<<b>☁ simulated internet</b><br/><font point-size='9'>"
                 f"router {GATEWAY}<br/>example.com {WEB.address}<br/>DNS {DNS.address}<br/>"
                 f"client {CLIENT.address}</font>>")
        self.graph.node(CLOUD, label, shape="ellipse", style="filled", fillcolor="#e1f5fe", color="#0277bd")
        uplink = self.snapshot.link(HOST, UPLINK)
        if uplink is not None:
            self.graph.edge(self.node_id(HOST, UPLINK), CLOUD, label="uplink", penwidth="2.5", color="#0277bd")


def _steps(numbers: list[int]) -> str:
    shown = ", ".join(f"#{n}" for n in numbers[:8])
    return shown + (f" +{len(numbers) - 8}" if len(numbers) > 8 else "")


def draw(snapshot: Snapshot, previous: Snapshot | None = None, *, routes: bool = False,
         world: bool = True, collapse_after: int = 12, overlay: Overlay | None = None,
         expand_world: bool = False) -> graphviz.Digraph:
    """A graphviz drawing of `snapshot`, highlighting changes since `previous`."""
    return Drawing(snapshot, previous, routes, world, collapse_after, overlay, expand_world).build()
