"""Drawings are made from the snapshot alone: asserted on their graphviz (DOT) source."""
from __future__ import annotations

import re

from lablib.model.state import HOST
from lablib.views.drawing import draw
from unit.recorded import load_snapshot
from unit.snapshots import Build, two_containers


def edges(source: str) -> list[tuple[str, str, str]]:
    """(tail, head, attributes) of every edge in a DOT source."""
    return re.findall(r'^\s*"?([^"\s]+)"? -> "?([^"\s]+)"? \[(.*)\]$', source, re.M)


def node(source: str, node_id: str) -> str | None:
    match = re.search(rf'^\s*"?{re.escape(node_id)}"? \[(.*)\]$', source, re.M)
    return match.group(1) if match else None


def cluster(source: str, name: str) -> str:
    """The DOT text of one namespace's box."""
    start = source.index(f'subgraph "cluster {name}"')
    depth, end = 0, start
    for end in range(source.index("{", start), len(source)):
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        if depth == 0:
            break
    return source[start:end]


def test_a_veth_pair_is_one_edge_between_its_two_interface_nodes():
    lab = Build()
    lab.veth(("red", "to-blue"), ("blue", "to-red"), addresses=(["10.1.0.1/24"], ["10.1.0.2/24"]))
    source = draw(lab.snapshot(), world=False).source
    cables = [(tail, head) for tail, head, attributes in edges(source) if "label=veth" in attributes]
    assert cables in ([("red/to-blue", "blue/to-red")], [("blue/to-red", "red/to-blue")])
    assert "10.1.0.1/24" in node(source, "red/to-blue") and "10.1.0.2/24" in node(source, "blue/to-red")


def test_a_containers_cable_runs_from_it_to_the_host_and_its_port_joins_the_bridge():
    source = draw(two_containers().snapshot(), world=False).source
    found = {(tail, head): attributes for tail, head, attributes in edges(source)}
    assert "label=veth" in found[("c1/eth0", "host/veth-c1")]      # container on the left
    assert "label=port" in found[("host/veth-c1", "host/br0")]
    assert "label=port" in found[("host/veth-c2", "host/br0")]
    assert "bridge" in node(source, "host/br0") and "10.0.0.1/24" in node(source, "host/br0")


def test_a_bridge_and_its_ports_are_drawn_inside_the_namespace_that_has_them():
    source = draw(two_containers().snapshot(), world=False).source
    host = cluster(source, HOST)
    for interface in ("host/br0", "host/veth-c1", "host/veth-c2"):
        assert f'"{interface}" [' in host
    assert '"c1/eth0" [' not in host and '"c1/eth0" [' in cluster(source, "c1")


def test_down_is_drawn_dashed_and_up_is_not():
    lab = Build()
    lab.ns("c1", lo_up=False)
    lab.ns("c2")
    source = draw(lab.snapshot(), world=False).source
    down, up = node(source, "c1/lo"), node(source, "c2/lo")
    assert "DOWN" in down and "dashed" in down
    assert ">UP<" in up and "dashed" not in up and "127.0.0.1/8" in up


def test_no_carrier_is_drawn_apart_from_down():
    lab = Build()
    lab.link(HOST, "veth-a", "veth", up=True, carrier=False)
    lab.link(HOST, "veth-b", "veth", up=False)
    source = draw(lab.snapshot(), world=False).source
    assert "NO-CARRIER" in node(source, "host/veth-a") and "dashed" not in node(source, "host/veth-a")
    assert "DOWN" in node(source, "host/veth-b") and "dashed" in node(source, "host/veth-b")


def test_what_changed_since_the_previous_drawing_is_highlighted_and_what_went_is_a_ghost():
    before = two_containers().snapshot()
    after = two_containers()
    after.link(HOST, "br1", "bridge")
    after.namespaces[HOST].link("br0").addresses.append("10.9.0.1/24")
    after.namespaces[HOST].links = [link for link in after.namespaces[HOST].links if link.name != "veth-c2"]
    del after.namespaces["c2"]
    source = draw(after.snapshot(), before, world=False).source
    assert "penwidth=3" in node(source, "host/br1")
    assert "+ 10.9.0.1/24" in node(source, "host/br0")
    assert "removed" in node(source, "host/veth-c2")
    assert 'label="netns c2 (deleted)"' in source
    assert "penwidth=3" not in draw(after.snapshot(), after.snapshot(), world=False).source


def test_many_look_alike_containers_collapse_into_one_box_but_a_changed_one_stays():
    lab = two_containers()
    for number in range(3, 51):
        lab.container(f"c{number}", f"10.0.0.{number + 1}/24", "10.0.0.1")
    before = lab.snapshot()
    after = two_containers()
    for number in range(3, 51):
        after.container(f"c{number}", f"10.0.0.{number + 1}/24", "10.0.0.1")
    eth0 = after.namespaces["c30"].link("eth0")
    eth0.admin_up = eth0.lower_up = False
    source = draw(after.snapshot(), before, world=False).source
    assert "46 more containers" in source and "46 more ports" in source
    assert "cluster c30" in source
    assert source.count("label=veth") < 10


def test_routes_and_the_outside_world_are_drawn_when_asked():
    lab = two_containers()
    with_routes = draw(lab.snapshot(), routes=True).source
    assert "via 10.0.0.1" in node(with_routes, "c1/#routes")
    assert "simulated internet" in with_routes
    assert ("host/eth0", "outside_world") in [(tail, head) for tail, head, _ in edges(with_routes)]
    assert "outside_world" not in draw(lab.snapshot(), world=False).source


def test_a_recorded_lab_is_drawn_with_each_cable_once_and_the_world_as_a_cloud():
    snapshot = load_snapshot("snapshot-nat")
    source = draw(snapshot).source
    cables = [(tail, head) for tail, head, attributes in edges(source) if "label=veth" in attributes]
    assert sorted(cables) == [("c1/eth0", "host/veth-c1"), ("c2/eth0", "host/veth-c2")]
    assert "DOWN" in node(source, "c2/lo")           # recorded with lo down in c2
    assert "world_" not in source                     # the outside world is a cloud, not boxes
    expanded = draw(snapshot, expand_world=True).source
    assert "cluster world:web" in expanded and node(expanded, "world_web/eth0") is not None
