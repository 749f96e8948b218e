"""Several hosts in one lab: namespaces acting as hosts on a shared LAN, routes between
their container subnets, and a VXLAN overlay — built, drawn, traced and checked for real."""
from __future__ import annotations

import re

import dpkt
import pytest

from lablib import expect
from lablib.views.trace_assembly import parse


def cluster_body(source: str, name: str) -> str:
    """The DOT text of one cluster, nested clusters included."""
    start = source.index(f'subgraph "cluster {name}" {{')
    depth = 0
    for index in range(start, len(source)):
        if source[index] == "{":
            depth += 1
        elif source[index] == "}":
            depth -= 1
            if depth == 0:
                return source[start:index + 1]
    raise AssertionError(f"cluster {name} is not closed")


def test_each_host_is_a_namespace_with_its_own_bridge_containers_and_lan_address(lab):
    cluster = lab.build_hosts(2, containers=2)
    assert [h.address for h in cluster.hosts.values()] == ["10.168.0.2", "10.168.0.3"]
    assert cluster.host_of("c3").name == "host2" and list(cluster["host1"].containers) == ["c1", "c2"]
    links = lab.table("links")
    peer = dict(zip(zip(links["ns"], links["ifname"]), links["peer"]))
    assert peer[("c3", "eth0")] == "veth-c3 in host2" and peer[("host2", "eth0")] == "veth-host2 in host"
    master = dict(zip(zip(links["ns"], links["ifname"]), links["master"]))
    assert master[("host2", "veth-c3")] == "docker0" and master[("host", "veth-host2")] == "lan0"
    # Docker's default on every host: the same subnet, so the same first address twice.
    assert "172.17.0.2/16" in lab.sh("ip -br addr show eth0", ns="c1").stdout
    assert "172.17.0.2/16" in lab.sh("ip -br addr show eth0", ns="c3").stdout
    lab.sh("ping -c1 -W2 10.168.0.3", ns="host1")                      # the hosts reach each other
    assert "203.0.113.10" in lab.sh("curl -sS -m 5 http://198.51.100.10/", ns="c3").stdout   # and the internet


def test_drawing_puts_each_hosts_containers_inside_its_box(lab):
    lab.build_hosts(2, containers=2)
    source = lab.topology().source
    host1, host2 = cluster_body(source, "host1"), cluster_body(source, "host2")
    assert 'subgraph "cluster c1"' in host1 and 'subgraph "cluster c2"' in host1
    assert 'subgraph "cluster c3"' in host2 and "cluster c1" not in host2
    assert '"host1/docker0"' in host1 and '"host1/eth0"' in host1
    assert "host1: netns acting as a host" in host1
    assert re.search(r'"c1/eth0" -> "host1/veth-c1" \[label=veth', source)       # container left of its host
    assert re.search(r'"host1/eth0" -> "host/veth-host1" \[label=veth', source)  # host left of the LAN


def test_routes_between_hosts_carry_container_traffic_and_the_exception_keeps_its_source(lab):
    lab.build_hosts(2, subnet=["10.0.1.0/24", "10.0.2.0/24"])
    assert not lab.sh("ping -c1 -W1 10.0.2.2", ns="c1", check=False).ok
    lab.sh("ip route add 10.0.2.0/24 via 10.168.0.3", ns="host1")
    lab.sh("ip route add 10.0.1.0/24 via 10.168.0.2", ns="host2")
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 -W2 10.0.2.2", ns="c1")
    table = t.table()
    arrived = table[(table["ns"] == "c3") & (table["direction"] == "in")].iloc[0]
    assert arrived["src"] == "10.168.0.2"      # MASQUERADEd by host1's Docker rule on the way out
    assert "MASQUERADE" in "".join(table[table["ns"] == "host1"]["change"])
    lab.sh("iptables -t nat -I POSTROUTING -s 10.0.1.0/24 -d 10.0.2.0/24 -j RETURN", ns="host1")
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 -W2 10.0.2.2", ns="c1")
    table = t.table()
    request = table[table["summary"].str.contains("echo request")]
    assert list(request["ns"]) == ["c1", *["host1"] * 3, "host", "host", *["host2"] * 3, "c3"]
    assert set(request["src"]) == {"10.0.1.2"} and "".join(request["change"]) == ""
    assert "vni" not in table.columns           # nothing was tunnelled


def test_vxlan_ping_is_traced_with_the_outer_udp_4789_header_and_the_inner_icmp(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    assert "vxlan id 42" in lab.sh("ip -d link show vxlan0", ns="host1").stdout
    with lab.trace("icmp or udp port 4789") as t:
        lab.sh("ping -c1 -W2 10.0.0.4", ns="c1")
    table = t.table()
    request = table[table["summary"].str.contains(r"\[ICMP echo request|^ICMP echo request", regex=True)]
    assert list(zip(request["ns"], request["interface"]))[0] == ("c1", "eth0")
    assert list(zip(request["ns"], request["interface"]))[-1] == ("c3", "eth0")
    on_the_wire = request[request["vni"].notna()]
    assert set(on_the_wire["ns"]) == {"host1", "host", "host2"}          # wrapped on the underlay only
    assert set(on_the_wire["outer src"]) == {"10.168.0.2"} and set(on_the_wire["outer dst"]) == {"10.168.0.3"}
    assert set(on_the_wire["vni"]) == {42}
    assert set(on_the_wire["src"]) == {"10.0.0.2"} and set(on_the_wire["dst"]) == {"10.0.0.4"}
    assert on_the_wire["summary"].iloc[0].startswith("VXLAN 42 [ICMP echo request")
    inside = request[request["vni"].isna()]
    assert ("host1", "vxlan0", "out") in zip(inside["ns"], inside["interface"], inside["direction"])
    assert ("host2", "vxlan0", "in") in zip(inside["ns"], inside["interface"], inside["direction"])
    assert request["packet"].nunique() == 1                                # one packet, inner and outer
    assert "delivered to c3" in t.flows()["fates"].str.cat()
    source = t.graph().source
    assert re.search(r'"host\d/vxlan0" -> "host\d/vxlan0" \[label="VXLAN 42 tunnel \(UDP 4789\)  #\d+', source)


def test_a_tunnel_is_drawn_only_between_vxlan_devices_that_send_to_each_other(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", span=True)
    assert "VXLAN" not in lab.topology().source
    for host in ("host1", "host2"):
        lab.sh("ip link add vxlan0 type vxlan id 42 dstport 4789 dev eth0 nolearning && "
               "ip link set vxlan0 master docker0 up", ns=host)
    assert "VXLAN" not in lab.topology().source       # no FDB entry: neither sends anywhere
    lab.sh("bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.168.0.3", ns="host1")
    assert "VXLAN 42 tunnel (UDP 4789), one way: host2 has no FDB entry for host1" in lab.topology().source
    lab.sh("bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.168.0.2", ns="host2")
    source = lab.topology().source
    assert "VXLAN 42 tunnel (UDP 4789)\"" in source and "one way" not in source


def test_fdb_table_lists_a_vxlan_devices_remote_hosts(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    lab.sh("ping -c1 -W2 10.0.0.4", ns="c1")
    fdb = lab.table("fdb", ns="host1")
    remote = fdb[(fdb["port"] == "vxlan0") & fdb["dst"].notna()]
    assert ("00:00:00:00:00:00", "10.168.0.3", "permanent") in zip(remote["mac"], remote["dst"], remote["state"])
    assert ("02:42:0a:00:00:04", "10.168.0.3", "learned") in zip(remote["mac"], remote["dst"], remote["state"])


def test_a_frame_too_big_for_the_vxlan_port_dies_in_the_bridge_and_the_trace_says_why(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42, mtu=1500)
    assert lab.sh("ping -c1 -W2 10.0.0.4", ns="c1", check=False).ok          # small packets pass
    assert not lab.sh("ping -c1 -W1 -M do -s 1472 10.0.0.4", ns="c1", check=False).ok
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 -W1 -M do -s 1472 10.0.0.4", ns="c1", check=False)
    fate = t.flows()["fates"].iloc[0]
    assert "dropped in host1: too big for the bridge docker0: 1500 bytes, but its port vxlan0 has MTU 1450" in fate
    lab.sh("ip link set eth0 mtu 1450", ns="c1")
    assert lab.sh("ping -c1 -W2 -M do -s 1422 10.0.0.4", ns="c1", check=False).ok


def test_encapsulated_claim_passes_for_the_overlay_only(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    assert lab.check("overlay", expect.encapsulated("c1", "10.0.0.4", vni=42)).passed
    result = lab.check("overlay", expect.encapsulated("c1", "10.0.0.4", vni=7))
    assert not result.passed and "wrapped with VNI 42, not 7" in result.text()
    lab.sh("ip link del vxlan0 && ip link add vxlan0 type vxlan id 43 dstport 4789 dev eth0 && "
           "ip link set vxlan0 master docker0 up && bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.168.0.2",
           ns="host2")
    lab.sh("ip neigh flush all", ns="c1")
    result = lab.check("overlay", expect.encapsulated("c1", "10.0.0.4", vni=42))
    assert not result.passed and "no answer came back" in result.text()


def test_encapsulated_claim_fails_for_routed_traffic(lab):
    lab.build_hosts(2, subnet=["10.0.1.0/24", "10.0.2.0/24"])
    lab.sh("ip route add 10.0.2.0/24 via 10.168.0.3", ns="host1")
    lab.sh("ip route add 10.0.1.0/24 via 10.168.0.2", ns="host2")
    result = lab.check("overlay", expect.encapsulated("c1", "10.0.2.2"))
    assert not result.passed and "crossed unwrapped" in result.text() and "routed, not an overlay" in result.text()


def test_vxlan_frame_is_decoded_to_its_inner_packet():
    inner = dpkt.ethernet.Ethernet(
        src=b"\x02\x42\x0a\x00\x00\x02", dst=b"\x02\x42\x0a\x00\x00\x04", type=dpkt.ethernet.ETH_TYPE_IP,
        data=dpkt.ip.IP(src=bytes([10, 0, 0, 2]), dst=bytes([10, 0, 0, 4]), p=1, id=7, ttl=64,
                        data=dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=5, seq=1, data=b"x"))))
    header = bytes([0x08, 0, 0, 0]) + (42).to_bytes(3, "big") + b"\x00"
    outer = dpkt.ethernet.Ethernet(
        src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", type=dpkt.ethernet.ETH_TYPE_IP,
        data=dpkt.ip.IP(src=bytes([10, 168, 0, 2]), dst=bytes([10, 168, 0, 3]), p=17, id=99,
                        data=dpkt.udp.UDP(sport=40000, dport=4789, data=header + bytes(inner))))
    parsed = parse(bytes(outer))
    assert (parsed["src"], parsed["dst"], parsed["protocol"]) == ("10.0.0.2", "10.0.0.4", "icmp")
    assert (parsed["outer_src"], parsed["outer_dst"], parsed["vni"]) == ("10.168.0.2", "10.168.0.3", 42)
    assert parsed["identity"] == parse(bytes(inner))["identity"]
    assert parsed["summary"] == "VXLAN 42 [ICMP echo request id 5 seq 1]"


@pytest.mark.parametrize("arguments, message", [
    (dict(subnet=["10.0.1.0/24"]), "one subnet for each of the 2 hosts"),
    (dict(subnet=["10.0.1.0/24", "10.0.2.0/24"], vxlan=42), "share one subnet"),
    (dict(subnet="10.0.0.0/30", containers=3), "no room"),
])
def test_build_hosts_refuses_what_cannot_be_built(lab, arguments, message):
    with pytest.raises(ValueError, match=message):
        lab.build_hosts(2, **arguments)


@pytest.mark.parametrize("kind, cause", [
    ("vxlan_mtu", "MTU at most 1450"),
    ("vxlan_fdb", "flooding to 10.168.0.3"),
    ("vxlan_vni", "is VXLAN 42 on UDP 4789"),
])
def test_each_overlay_fault_breaks_a_full_size_ping_and_only_its_repair_passes(lab, monkeypatch, kind, cause):
    monkeypatch.setenv("LABLIB_FAULT", kind)
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    fault = lab.plant_fault("09-t", among=["vxlan_mtu", "vxlan_fdb", "vxlan_vni"],
                            probe=expect.reaches("c1", "10.0.0.4", size=1472, timeout=1))
    assert fault.kind == kind and "fails" in fault.symptom
    assert not fault.check().passed
    for command in fault.solution():
        lab.sh(command)
    lab.sh("ip neigh flush dev eth0", ns="c1")   # c1 gave up on c3's MAC while it was broken
    result = fault.check()
    assert result.passed, result.text()
    assert cause in result.text() and "crosses the underlay (10.168.0.2 → 10.168.0.3) wrapped in VXLAN 42" in result.text()


def test_rebuilding_the_vxlan_device_is_no_repair_of_a_missing_flood_entry(lab, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "vxlan_fdb")
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    fault = lab.plant_fault("09-t", among=["vxlan_fdb"], probe=expect.reaches("c1", "10.0.0.4", size=1472, timeout=1))
    lab.sh("ip link del vxlan0 && ip link add vxlan0 type vxlan id 42 dstport 4789 dev eth0 local 10.168.0.2 && "
           "ip link set vxlan0 master docker0 up && bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.168.0.3",
           ns="host1")
    lab.sh("ip neigh flush dev eth0", ns="c1")
    result = fault.check()
    assert not result.passed and "vxlan0 in host1 was deleted and made again" in result.text()


def test_vxlan_claim_reads_the_vni_the_bridge_and_where_broadcasts_go(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", span=True)
    claim = expect.vxlan("host1", "vxlan0", vni=42, master="docker0", remotes=["10.168.0.3"])
    assert "there is no VXLAN device vxlan0" in lab.check("v", claim).text()
    lab.sh("ip link add vxlan0 type vxlan id 7 dstport 4789 dev eth0", ns="host1")
    assert "it is VXLAN 7 on UDP 4789" in lab.check("v", claim).text()
    lab.sh("ip link del vxlan0 && ip link add vxlan0 type vxlan id 42 dstport 4789 dev eth0 && "
           "ip link set vxlan0 master docker0 up", ns="host1")
    assert "broadcasts (ARP) go to no host" in lab.check("v", claim).text()
    lab.sh("bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.168.0.3", ns="host1")
    assert lab.check("v", claim).passed


def test_a_prediction_about_the_underlay_reads_the_outer_header(lab):
    lab.build_hosts(2, subnet="10.0.0.0/24", vxlan=42)
    p = lab.predict("09-t", "source on host2's eth0?", choices={"a": "10.0.0.2", "b": "10.168.0.2"})
    p.answer = "b"
    q = lab.predict("09-t", "inner source?", choices={"a": "10.0.0.2", "b": "10.168.0.2"}, answer="a")
    with lab.trace("icmp or udp port 4789") as t:
        lab.sh("ping -c1 10.0.0.4", ns="c1")
    assert p.observe_trace(t, "outer_source_at", at="host2").passed
    assert q.observe_trace(t, "source_at", at="host2").passed      # the inner header, as before
