"""Packet traces from real traffic in real labs: every hop, every rewrite, every drop."""
from __future__ import annotations

import re

import dpkt
import pytest

from lablib import LabError


def hops(table, packet: int) -> list[tuple[str, str, str]]:
    rows = table[table["packet"] == packet]
    return list(zip(rows["ns"], rows["interface"], rows["direction"]))


def test_ping_across_a_bridge_is_arp_then_icmp_hop_by_hop(two_containers):
    lab = two_containers
    with lab.trace("icmp or arp") as t:
        lab.sh("ping -c1 10.0.0.3", ns="c1")
    table = t.table()
    first = table[table["hop"] == 1].sort_values("time (ms)")
    assert first["summary"].iloc[0] == "ARP who-has 10.0.0.3 tell 10.0.0.2"
    request = table[table["summary"].str.startswith("ICMP echo request")]["packet"].iloc[0]
    reply = table[table["summary"].str.startswith("ICMP echo reply")]["packet"].iloc[0]
    assert hops(table, request) == [("c1", "eth0", "out"), ("host", "veth-c1", "in"),
                                    ("host", "veth-c2", "out"), ("c2", "eth0", "in")]
    assert hops(table, reply) == [("c2", "eth0", "out"), ("host", "veth-c2", "in"),
                                  ("host", "veth-c1", "out"), ("c1", "eth0", "in")]
    flows = t.flows()
    assert list(flows["protocol"]) == ["arp", "icmp"]
    assert "delivered to c2" in flows["fates"].iloc[1] and "delivered to c1" in flows["fates"].iloc[1]
    source = t.graph().source
    assert re.search(r'"c1/eth0" -> "host/veth-c1" \[label="veth  #\d+, #\d+', source)


def test_masquerade_rewrites_the_source_at_postrouting_and_back_on_the_reply(lab):
    lab.build(["c1"], nat=True)
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 198.51.100.10", ns="c1")
    table = t.table()
    request, reply = table[table["packet"] == 1], table[table["packet"] == 2]
    leaving = request[(request["ns"] == "host") & (request["interface"] == "eth0")].iloc[0]
    assert leaving["src"] == "203.0.113.10"
    assert "MASQUERADE at POSTROUTING: source 10.0.0.2 → 203.0.113.10" in leaving["change"]
    assert "masquerade" in leaving["netfilter"]
    assert request[request["ns"] == "world:web"]["src"].iloc[0] == "203.0.113.10"   # what the server saw
    back = reply[reply["ns"] == "c1"].iloc[0]
    assert back["dst"] == "10.0.0.2"
    assert "reverse NAT by conntrack" in "".join(reply["change"])
    assert list(request["ttl"])[:2] == [64, 64] and request["ttl"].iloc[-1] < 64   # TTL drops per routed hop
    assert "MASQUERADE" in t.graph().source


def test_a_reply_is_un_natted_at_prerouting_on_the_interface_it_arrives_by(lab):
    lab.build(["c1"], nat=True)
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 198.51.100.10", ns="c1")
    table = t.table()
    reply = table[(table["packet"] == 2) & (table["ns"] == "host")]
    credited = reply[reply["change"] != ""]
    assert list(zip(credited["interface"], credited["direction"])) == [("eth0", "in")]
    assert "reverse NAT by conntrack at PREROUTING on eth0 (a reply): destination 203.0.113.10 → 10.0.0.2" \
        in credited["change"].iloc[0]
    assert credited["dst"].iloc[0] == "203.0.113.10"   # the row still shows the packet as it arrived


def test_a_dnat_is_credited_where_the_packet_arrives_and_its_undoing_where_the_reply_leaves(lab):
    lab.build(["web"], servers={"web": 80}, publish={8080: ("web", 80)})
    with lab.trace("tcp[tcpflags] & tcp-syn != 0") as t:
        lab.sh("curl -s -o /dev/null 203.0.113.10:8080", ns="world:client")
    table = t.table()
    host = table[(table["ns"] == "host") & (table["change"] != "")]
    syn, synack = host[host["packet"] == 1], host[host["packet"] == 2]
    assert list(zip(syn["interface"], syn["direction"])) == [("eth0", "in")]
    assert "DNAT at PREROUTING" in syn["change"].iloc[0]
    assert list(zip(synack["interface"], synack["direction"])) == [("eth0", "out")]
    assert "reverse NAT by conntrack at POSTROUTING on eth0 (a reply): source 10.0.0.2:80" in synack["change"].iloc[0]


def test_a_published_port_shows_dnat_at_prerouting_and_the_reply_un_natted(lab):
    lab.build(["web"], servers={"web": 80}, publish={8080: ("web", 80)})
    with lab.trace("tcp") as t:
        lab.sh("curl -s -o /dev/null 203.0.113.10:8080", ns="world:client")
    table = t.table()
    syn = table[table["packet"] == 1]
    assert "DNAT at PREROUTING: destination 203.0.113.10:8080 → 10.0.0.2:80" in "".join(syn["change"])
    assert syn[syn["ns"] == "web"]["dport"].iloc[0] == 80
    synack = table[table["packet"] == 2]
    out_of_host = synack[(synack["ns"] == "host") & (synack["interface"] == "eth0")].iloc[0]
    assert (out_of_host["src"], out_of_host["sport"]) == ("203.0.113.10", 8080)
    assert len(t.flows()) == 1   # the whole connection is one flow


def test_a_drop_says_where_the_packet_died(two_containers):
    lab = two_containers
    lab.sh("iptables -P FORWARD DROP")
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 -W1 10.0.0.3", ns="c1", check=False)
    table = t.table()
    dropped = table[table["direction"] == "dropped"]
    assert list(dropped["ns"]) == ["host"]
    assert "FORWARD policy DROP" in dropped["summary"].iloc[0]
    assert "policy drop" in "".join(table["netfilter"].fillna(""))
    source = t.graph().source
    assert "FORWARD policy DROP" in source and "xlabel=" in source


def test_a_reply_without_nat_dies_at_the_internet_router(lab):
    lab.build(["c1"], forward=True)
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 -W1 198.51.100.10", ns="c1", check=False)
    dropped = t.table()[t.table()["direction"] == "dropped"]
    assert list(dropped["ns"]) == ["world:internet"] and "no route to 10.0.0.2" in dropped["summary"].iloc[0]


def test_nothing_of_the_trace_remains_after_the_block(two_containers):
    lab = two_containers
    def plumbing() -> dict:
        return {name: lab.sh("/usr/sbin/nft list tables; wc -l < /proc/net/packet; ip -o link | wc -l", ns=ns).stdout
                for name, ns in (("host", None), ("c1", "c1"), ("web", "world:web"))}
    before = plumbing()
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 10.0.0.3", ns="c1")
        during = lab.sh("nft list ruleset; iptables-save").stdout
        assert "lablib_trace" not in during                      # hidden from the learner meanwhile
        assert "lablib_trace" in lab.sh("/usr/sbin/nft list tables").stdout
    assert plumbing() == before
    assert "nft monitor" not in lab.sh("ps -eo args").stdout
    assert len(t.packets) == 2


def test_a_trace_saves_a_pcap_that_wireshark_and_tcpdump_read(two_containers, tmp_path):
    lab = two_containers
    with lab.trace("icmp") as t:
        lab.sh("ping -c2 -i 0.2 10.0.0.3", ns="c1")
    path = t.save(str(tmp_path / "ping.pcap"))
    with open(path, "rb") as f:
        frames = list(dpkt.pcap.Reader(f))
    assert len(frames) == sum(len(p.hops) for p in t.packets) == 16


def test_the_sequence_view_shows_request_and_reply(two_containers):
    lab = two_containers
    with lab.trace("icmp") as t:
        lab.sh("ping -c1 10.0.0.3", ns="c1")
    page = t.sequence()._repr_html_()
    assert page.count("──────▶") == 2 and page.count("◀──────") == 2
    assert "ICMP echo request" in page and "ICMP echo reply" in page


def test_a_bad_filter_is_one_line_in_tcpdump_terms(lab):
    with pytest.raises(LabError, match="cannot trace 'icmpp'.*tcpdump syntax"):
        with lab.trace("icmpp"):
            pass


def test_reading_a_trace_inside_its_block_says_to_wait(two_containers):
    with pytest.raises(LabError, match="still running"):
        with two_containers.trace("icmp") as t:
            t.table()
