"""Drawings and tables of the lab host, made from its real kernel state.

Networks are built with real commands; assertions read the model and the graphviz
source, never pixels.
"""
from __future__ import annotations

import re

import pytest

from lablib import NamespaceNotFound

VETH_BETWEEN_NAMESPACES = """
ip netns add red && ip netns add blue
ip link add to-blue type veth peer name to-red
ip link set to-blue netns red && ip link set to-red netns blue
ip -n red link set to-blue up && ip -n blue link set to-red up
"""


def edge(source: str, tail: str, head: str) -> str | None:
    """The attributes of the edge tail -> head in a graphviz source, if there is one."""
    match = re.search(rf'^\s*"?{re.escape(tail)}"? -> "?{re.escape(head)}"? \[(.*)\]$', source, re.M)
    return match.group(1) if match else None


def node(source: str, node_id: str) -> str | None:
    match = re.search(rf'^\s*"?{re.escape(node_id)}"? \[(.*)\]$', source, re.M)
    return match.group(1) if match else None


def test_a_veth_pair_across_two_namespaces_is_one_cable_between_the_right_interfaces(lab):
    lab.sh(VETH_BETWEEN_NAMESPACES)
    snapshot = lab.snapshot()
    assert [(one.key, other.key) for one, other in snapshot.veth_pairs()] in (
        [(("red", "to-blue"), ("blue", "to-red"))], [(("blue", "to-red"), ("red", "to-blue"))])
    source = lab.topology().source
    cables = [line for line in source.splitlines() if "label=veth" in line]
    assert len(cables) == 1
    assert edge(source, "red/to-blue", "blue/to-red") or edge(source, "blue/to-red", "red/to-blue")


def test_a_containers_veth_cable_ends_at_its_port_on_the_bridge(two_containers):
    source = two_containers.topology().source
    assert "label=veth" in edge(source, "c1/eth0", "host/veth-c1")
    assert "label=port" in edge(source, "host/veth-c1", "host/br0")
    assert "label=port" in edge(source, "host/veth-c2", "host/br0")
    assert "10.0.0.1/24" in node(source, "host/br0") and "bridge" in node(source, "host/br0")


def test_a_new_namespace_shows_lo_down_then_up(lab):
    lab.sh("ip netns add c1")
    down = node(lab.topology().source, "c1/lo")
    assert "DOWN" in down and "dashed" in down
    lab.sh("ip link set lo up", ns="c1")
    up = node(lab.topology().source, "c1/lo")
    assert ">UP<" in up and "127.0.0.1/8" in up and "dashed" not in up


def test_no_carrier_is_drawn_apart_from_down_and_up(lab):
    lab.sh("ip link add veth-a type veth peer name veth-b && ip link set veth-a up")
    source = lab.topology().source
    assert "NO-CARRIER" in node(source, "host/veth-a") and "DOWN" in node(source, "host/veth-b")


def test_deleting_a_namespace_removes_its_box(two_containers):
    lab = two_containers
    assert "cluster c2" in lab.topology().source
    lab.sh("ip netns del c2")
    source = lab.topology().source
    assert 'label="netns c2 (deleted)"' in source          # highlighted as gone, once
    assert "c2/eth0" not in source
    assert "cluster c2" not in lab.topology().source          # and then simply absent


def test_changes_since_the_last_drawing_are_highlighted(two_containers):
    lab = two_containers
    lab.topology()
    lab.sh("ip link add br1 type bridge && ip addr add 10.9.0.1/24 dev br0 && ip link del veth-c2")
    source = lab.topology().source
    assert "penwidth=3" in node(source, "host/br1")                       # new interface
    assert "+ 10.9.0.1/24" in node(source, "host/br0")                    # new address
    assert "removed" in node(source, "host/veth-c2")                      # a removed link's ghost
    assert "penwidth=3" not in lab.topology().source                      # nothing new since


def test_options_routes_and_outside_world(two_containers):
    lab = two_containers
    with_routes = lab.topology(routes=True).source
    assert "via 10.0.0.1" in node(with_routes, "c1/#routes")
    assert "simulated internet" in with_routes and "uplink" in edge(with_routes, "host/eth0", "outside_world")
    assert "outside_world" not in lab.topology(world=False).source


def test_fifty_containers_stay_legible(lab):
    lab.build(50, subnet="10.0.0.0/24")
    lab.topology()
    lab.sh("ip link set eth0 down", ns="c30")
    source = lab.topology().source
    assert "46 more containers" in source and "46 more ports" in source
    assert "cluster c30" in source           # what changed is never folded away
    assert source.count("label=veth") < 10


def test_fdb_table_shows_the_macs_learned_after_a_ping(two_containers):
    lab = two_containers
    macs = {name: lab.sh("cat /sys/class/net/eth0/address", ns=name).stdout.strip() for name in ("c1", "c2")}
    lab.sh("bridge fdb flush dev br0 dynamic")
    lab.sh("ping -c1 10.0.0.3", ns="c1")
    fdb = lab.table("fdb")
    learned = dict(zip(fdb["mac"], fdb["port"]))
    assert learned[macs["c1"]] == "veth-c1" and learned[macs["c2"]] == "veth-c2"
    assert not any(mac.startswith(("33:33", "01:00:5e")) for mac in fdb["mac"])   # no permanent entries


def test_rule_counters_rise_after_traffic(two_containers):
    lab = two_containers
    lab.sh("iptables -A FORWARD -i br0 -o br0 -j ACCEPT")
    def packets():
        rules = lab.table("rules")
        return int(rules[rules["rule"] == "-A FORWARD -i br0 -o br0 -j ACCEPT"]["packets"].iloc[0])
    before = packets()
    lab.sh("ping -c3 -i 0.2 10.0.0.3", ns="c1")
    assert packets() >= before + 6    # three requests and three replies, bridged through FORWARD


def test_conntrack_and_nat_tables_show_masquerade(lab):
    lab.build(["c1"], nat=True)
    lab.sh("curl -s 198.51.100.10", ns="c1")
    flows = lab.table("conntrack")
    assert "SNAT 10.0.0.2 -> 203.0.113.10" in set(flows["nat"])
    nat = lab.table("nat")
    masquerade = nat[nat["rule"].str.contains("MASQUERADE")]
    assert int(masquerade["packets"].iloc[0]) >= 1


NFT_WITH_A_LONG_SET = """
nft add table inet lab
nft add set inet lab blocked '{ type ipv4_addr; }'
nft add element inet lab blocked '{ 10.9.0.1, 10.9.0.2, 10.9.0.3, 10.9.0.4, 10.9.0.5, 10.9.0.6, 10.9.0.7, 10.9.0.8 }'
nft add chain inet lab input '{ type filter hook input priority 0; policy accept; }'
nft add rule inet lab input ip saddr @blocked counter drop
nft add rule inet lab input icmp type echo-request counter accept
nft add chain inet lab forward '{ type filter hook forward priority 0; policy drop; }'
"""


def test_nft_rules_and_counters_of_a_table_with_a_multi_line_set(lab):
    lab.sh(NFT_WITH_A_LONG_SET)
    assert "\n\t\t\t     10.9.0." in lab.sh("nft list set inet lab blocked").stdout   # listed over several lines
    lab.sh("ping -c2 -i 0.2 127.0.0.1")
    rules = lab.table("rules")
    assert list(zip(rules["chain"], rules["rule"], rules["listed by"])) == [
        ("input", "policy accept", "nft"),
        ("input", "ip saddr @blocked counter packets 0 bytes 0 drop", "nft"),
        ("input", rules["rule"].iloc[2], "nft"),
        ("forward", "policy drop", "nft")]
    assert rules["rule"].iloc[2].startswith("icmp type echo-request counter packets ")
    assert int(rules["packets"].iloc[2]) >= 2 and (rules["family"] == "inet").all()


def test_tables_of_links_addrs_routes_neigh_and_sockets(two_containers):
    lab = two_containers
    lab.spawn("python3 -m http.server 8080", ns="c1", ready_port=8080)
    lab.sh("ping -c1 10.0.0.3", ns="c1")
    links = lab.table("links", ns="c1")
    assert links.set_index("ifname").loc["eth0", "peer"] == "veth-c1 in host"
    addrs = lab.table("addrs", ns="c2")
    assert ("eth0", "10.0.0.3", 24) in set(zip(addrs["ifname"], addrs["address"], addrs["prefixlen"]))
    routes = lab.table("routes", ns="c1")
    assert set(routes["dst"]) == {"default", "10.0.0.0/24"} and routes.set_index("dst").loc["10.0.0.0/24", "connected"]
    assert "10.0.0.3" in set(lab.table("neigh", ns="c1")["address"])
    sockets = lab.table("sockets", ns="c1")
    assert (8080, "python3") in set(zip(sockets["port"], sockets["process"]))
    with pytest.raises(NamespaceNotFound):
        lab.table("links", ns="c9")


def test_comparison_puts_the_host_and_a_container_side_by_side(two_containers):
    lab = two_containers
    lab.spawn("python3 -m http.server 8080", ns="c1", ready_port=8080)
    view = lab.compare("host", "c1").data
    assert list(view.columns) == ["lab host", "c1"]
    assert "br0 (bridge, UP)" in view.loc["interfaces", "lab host"] and "br0" not in view.loc["interfaces", "c1"]
    assert ":8080" in view.loc["listening ports", "c1"] and ":8080" not in view.loc["listening ports", "lab host"]
    assert view.loc["routes", "c1"].startswith("default via 10.0.0.1")


def test_the_live_view_redraws_after_each_command(lab):
    lab.live(dock=False)
    view = lab.live_view
    assert "lab host" in view.widget.value and "netns c1" not in view.widget.value
    lab.sh("ip netns add c1")
    assert "netns c1" in view.widget.value
    rendered = view.widget.value
    lab.sh("true")
    assert view.widget.value is rendered     # nothing changed: no redraw


def test_the_live_view_says_when_the_lab_host_was_closed(lab):
    lab.live(dock=False)
    view = lab._live
    lab.sh("ip netns add c1")
    lab.close()
    assert view.widget.value.startswith("<div style='color:#c62828") and "was closed" in view.widget.value
    assert "netns c1" in view.widget.value     # the last drawing, faded, under that line
