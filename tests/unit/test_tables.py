"""Tables: one row per kernel object, columns named as iproute2 names them."""
from __future__ import annotations

import pandas as pd
import pytest

from lablib.model.state import HOST, Connection, Socket
from lablib.views.tables import KINDS, comparison, table
from unit.recorded import load_snapshot
from unit.snapshots import Build, two_containers


@pytest.fixture(scope="module")
def recorded():
    """c1, c2 on br0 with MASQUERADE; lo down in c2; a server in c1; after one curl."""
    return load_snapshot("snapshot-nat")


def test_links_show_state_master_and_the_veths_other_end(recorded):
    links = table(recorded, "links").set_index(["ns", "ifname"])
    assert links.loc[("host", "veth-c1"), "master"] == "br0"
    assert links.loc[("host", "veth-c1"), "peer"] == "eth0 in c1"
    assert links.loc[("c1", "eth0"), "peer"] == "veth-c1 in host"
    assert links.loc[("c2", "lo"), "state"] == "DOWN" and links.loc[("c1", "lo"), "state"] == "UP"
    assert links.loc[("host", "br0"), "kind"] == "bridge"
    assert str(links["link-netnsid"].dtype) == "Int64"      # a missing id is <NA>, not NaN


def test_addresses_are_split_into_address_prefix_family_and_scope(recorded):
    addrs = table(recorded, "addrs")
    br0 = addrs[(addrs["ns"] == HOST) & (addrs["ifname"] == "br0") & (addrs["family"] == "inet")].iloc[0]
    assert (br0["address"], br0["prefixlen"], br0["scope"]) == ("10.0.0.1", 24, "global")
    assert set(addrs[addrs["address"].str.startswith("fe80:")]["scope"]) == {"link"}
    assert set(addrs[addrs["ifname"] == "lo"]["scope"]) == {"host"}


def test_routes_tell_connected_from_via_a_gateway(recorded):
    routes = table(recorded, "routes")
    c1 = routes[routes["ns"] == "c1"].set_index("dst")
    assert c1.loc["default", "gateway"] == "10.0.0.1" and not c1.loc["default", "connected"]
    assert c1.loc["10.0.0.0/24", "connected"] and c1.loc["10.0.0.0/24", "scope"] == "link"


def test_nat_keeps_only_nat_rules_with_their_counters(recorded):
    nat = table(recorded, "nat")
    assert set(nat["table"]) == {"nat"}
    masquerade = nat[nat["rule"].str.endswith("-j MASQUERADE")].iloc[0]
    assert masquerade["chain"] == "POSTROUTING" and masquerade["packets"] >= 1
    assert len(table(recorded, "rules")) > len(nat)


def test_conntrack_shows_what_nat_did_to_a_flow(recorded):
    flows = table(recorded, "conntrack")
    web = flows[flows["dport"] == 80].iloc[0]
    assert web["nat"] == "SNAT 10.0.0.2 -> 203.0.113.10" and web["reply dst"] == "203.0.113.10"


def test_sockets_name_the_process_that_listens(recorded):
    sockets = table(recorded, "sockets").set_index(["ns", "port"])
    assert sockets.loc[("c1", 8000), "process"] == "python3"
    assert sockets.loc[("world:web", 80), "process"] == "example.com"


def test_rows_the_kernel_lists_in_no_order_are_sorted_within_each_namespace():
    lab = Build()
    host = lab.namespaces[HOST]
    host.sockets = [Socket(HOST, "udp", "0.0.0.0", 53, None, None), Socket(HOST, "tcp", "0.0.0.0", 8080, "x", 7),
                    Socket(HOST, "tcp", "0.0.0.0", 22, None, None)]
    lab.ns("c1").sockets = [Socket("c1", "tcp", "0.0.0.0", 1, None, None)]
    sockets = table(lab.snapshot(), "sockets")
    assert list(zip(sockets["ns"], sockets["protocol"], sockets["port"])) == [
        (HOST, "tcp", 22), (HOST, "tcp", 8080), (HOST, "udp", 53), ("c1", "tcp", 1)]
    assert str(sockets["pid"].dtype) == "Int64" and pd.isna(sockets["pid"].iloc[0])


def test_an_icmp_flow_has_no_ports_and_shows_none_rather_than_nan():
    lab = Build()
    lab.namespaces[HOST].connections = [
        Connection(HOST, "icmp", "10.0.0.2", "198.51.100.10", None, None, "198.51.100.10", "203.0.113.10",
                   None, None, "", "")]
    flows = table(lab.snapshot(), "conntrack")
    assert flows["sport"].isna().all() and flows["sport"].dtype.kind != "f"   # never 80.0 or NaN
    assert flows["nat"].iloc[0] == "SNAT 10.0.0.2 -> 203.0.113.10"


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_table_still_has_its_columns(kind):
    frame = table(Build().snapshot(), kind)
    assert frame.empty and "ns" in frame.columns


def test_an_unknown_table_names_the_ones_there_are():
    with pytest.raises(ValueError, match="unknown table 'route'.*routes"):
        table(Build().snapshot(), "route")


def test_the_comparison_puts_each_namespaces_stack_side_by_side():
    lab = two_containers()
    compared = comparison(lab.snapshot())
    assert list(compared.columns) == ["lab host", "c1", "c2"]
    assert compared.loc["routes", "c1"] == "10.0.0.0/24 dev eth0\ndefault via 10.0.0.1"
    assert compared.loc["addresses", "c2"] == "127.0.0.1/8 on lo\n10.0.0.3/24 on eth0"
    assert compared.loc["listening ports", "c1"] == "(none)"
