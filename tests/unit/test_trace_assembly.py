"""Trace assembly: recorded frames and `nft monitor trace` lines from real labs become
packets hop by hop, flows, rewrites credited to the rule that made them, and fates."""
from __future__ import annotations

import dpkt
import pytest

from lablib.model.protocol import TraceRecording
from lablib.model.state import HOST
from lablib.views.drawing import Overlay
from lablib.views.trace import TraceResult
from lablib.views.trace_assembly import Assembly, netfilter_steps, parse
from lablib.views.tracedraw import overlay_for
from unit.recorded import load_trace
from unit.snapshots import two_containers


def assembled(name: str) -> Assembly:
    return Assembly(load_trace(name))


def path(packet) -> list[tuple[str, str, str]]:
    return [(hop.ns, hop.interface, hop.direction) for hop in packet.hops]


# -- recorded: MASQUERADE -------------------------------------------------------------------

def test_a_masqueraded_ping_is_two_packets_of_one_flow_hop_by_hop():
    request, reply = assembled("masquerade-ping").packets
    assert path(request) == [("c1", "eth0", "out"), (HOST, "veth-c1", "in"), (HOST, "br0", "in"),
                             (HOST, "eth0", "out"), ("world:internet", "lab-host", "in"),
                             ("world:internet", "servers", "out"), ("world:internet", "web", "out"),
                             ("world:web", "eth0", "in")]
    assert path(reply)[0] == ("world:web", "eth0", "out") and path(reply)[-1] == ("c1", "eth0", "in")
    assert request.flow == reply.flow == 1
    assert request.summary.startswith("ICMP echo request") and reply.summary.startswith("ICMP echo reply")


def test_the_source_rewrite_is_credited_to_masquerade_and_the_reply_to_conntrack():
    request, reply = assembled("masquerade-ping").packets
    assert request.changes == {HOST: "MASQUERADE at POSTROUTING: source 10.0.0.2 → 203.0.113.10"}
    assert reply.changes == {HOST: "reverse NAT by conntrack at PREROUTING on eth0 (a reply): destination 203.0.113.10 → 10.0.0.2"}
    leaving = next(hop for hop in request.hops if (hop.ns, hop.interface) == (HOST, "eth0"))
    assert leaving.src == "203.0.113.10" and request.first.src == "10.0.0.2"
    assert [hop.ttl for hop in request.hops][:2] == [64, 64] and request.hops[-1].ttl < 64


def test_netfilter_steps_are_attached_to_the_packet_that_met_them():
    request, reply = assembled("masquerade-ping").packets
    masquerade = [step for step in request.netfilter if step.nat == "MASQUERADE"]
    assert [(step.ns, step.table, step.chain) for step in masquerade] == [(HOST, "nat", "POSTROUTING")]
    assert all(step.table != "lablib_trace" for step in request.netfilter + reply.netfilter)
    assert not any(step.nat for step in reply.netfilter)   # conntrack, not a rule, undoes it


def test_both_ends_of_the_masqueraded_ping_are_delivered():
    request, reply = assembled("masquerade-ping").packets
    assert (request.fate, reply.fate) == ("delivered to world:web", "delivered to c1")
    assert request.dropped_in is None and reply.dropped_in is None


# -- recorded: DNAT from world:client ---------------------------------------------------------

def test_a_published_port_is_dnat_at_prerouting_then_conntrack_for_the_rest():
    packets = assembled("dnat-from-client").packets
    syn, synack = packets[0], packets[1]
    assert syn.changes == {HOST: "DNAT at PREROUTING: destination 203.0.113.10:8080 → 10.0.0.2:80"}
    assert syn.hops[-1].ns == "web" and (syn.hops[-1].dst, syn.hops[-1].dport) == ("10.0.0.2", 80)
    assert synack.changes == {HOST: "reverse NAT by conntrack at POSTROUTING on eth0 (a reply): source 10.0.0.2:80 → 203.0.113.10:8080"}
    later = [p for p in packets[2:] if p.first.ns == "world:client"]
    assert later and all("NAT by conntrack at PREROUTING on eth0 (as the connection's first packet was)" in p.changes[HOST]
                         for p in later)


def test_a_tcp_connection_is_one_flow_with_relative_sequence_numbers():
    packets = assembled("dnat-from-client").packets
    assert {p.flow for p in packets} == {1}
    assert packets[0].summary == "TCP 36110 > 8080 [S] seq 0"
    assert packets[1].hops[0].summary == "TCP 80 > 36110 [S.] seq 0 ack 1"
    assert all(p.fate in ("delivered to web", "delivered to world:client") for p in packets)


# -- recorded: drops ------------------------------------------------------------------------------

def test_a_reply_without_nat_dies_at_the_internet_router_for_want_of_a_route():
    request, reply, error = assembled("reply-dies-at-router").packets
    assert request.fate == "delivered to world:web"
    assert reply.dropped_in == "world:internet"
    assert reply.fate == "dropped in world:internet: no route to 10.0.0.2"
    assert error.summary == "ICMP net unreachable" and error.flow == reply.flow   # the error joins its flow


def test_a_forward_drop_names_the_policy_where_the_packet_died():
    (request,) = assembled("forward-drop").packets
    assert path(request) == [("c1", "eth0", "out"), (HOST, "veth-c1", "in")]
    assert request.fate == "dropped in host: FORWARD policy DROP"
    assert [str(step) for step in request.netfilter] == ["filter FORWARD: policy drop → drop"]


def test_the_table_adds_a_dropped_row_and_the_drawing_a_cross(tmp_path):
    result = TraceResult(load_trace("forward-drop"), "icmp")
    table = result.table()
    assert list(table["direction"]) == ["out", "in", "dropped"]
    assert table["summary"].iloc[-1] == "✗ dropped in host: FORWARD policy DROP"
    assert table["netfilter"].iloc[1] == "filter FORWARD: policy drop → drop"
    overlay = overlay_for(result.snapshot, result.packets)
    assert overlay.died_at == {(HOST, "veth-c1")}
    assert overlay.drops == {HOST: ["✗ packet 1 (ICMP echo request id 53 seq 1) FORWARD policy DROP"]}
    # Steps are named packet.hop, as the trace table counts hops.
    assert overlay.cable_steps == {frozenset({("c1", "eth0"), (HOST, "veth-c1")}): ["1.2"]}


def test_the_path_drawing_numbers_hops_along_cables_and_through_bridge_ports():
    result = TraceResult(load_trace("masquerade-ping"), "icmp")
    overlay = overlay_for(result.snapshot, result.packets)
    assert overlay.cable_steps[frozenset({("c1", "eth0"), (HOST, "veth-c1")})] == ["1.2", "2.8"]
    assert overlay.port_steps[(HOST, "veth-c1")] == ["1.3", "2.7"]
    assert overlay.notes[HOST][0] == "packet 1: MASQUERADE at POSTROUTING: source 10.0.0.2 → 203.0.113.10"
    assert "MASQUERADE" in result.graph().source


def test_a_recorded_trace_is_saved_as_a_pcap_of_every_frame(tmp_path):
    raw = load_trace("masquerade-ping")
    written = TraceResult(raw, "icmp").save(str(tmp_path / "ping.pcap"))
    with open(written, "rb") as f:
        assert len(list(dpkt.pcap.Reader(f))) == len(raw.frames) == 16


# -- hand-made frames and trace lines ----------------------------------------------------------

def ethernet(ip: dpkt.ip.IP) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02\x42\x0a\x00\x00\x02", dst=b"\x02\x42\x0a\x00\x00\x01",
                                        type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def echo(src: bytes, dst: bytes, ip_id: int, ttl: int = 64, kind: int = 8) -> bytes:
    icmp = dpkt.icmp.ICMP(type=kind, data=dpkt.icmp.ICMP.Echo(id=7, seq=1, data=b"lablib"))
    return ethernet(dpkt.ip.IP(src=src, dst=dst, id=ip_id, ttl=ttl, p=dpkt.ip.IP_PROTO_ICMP, data=icmp))


C1, C2, BR = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 3]), bytes([10, 0, 0, 1])


def test_a_frame_is_parsed_into_what_identifies_it_across_nat():
    seen = parse(echo(C1, C2, 4242))
    assert seen["summary"] == "ICMP echo request id 7 seq 1"
    assert (seen["src"], seen["dst"], seen["ttl"], seen["ip_id"]) == ("10.0.0.2", "10.0.0.3", 64, 4242)
    assert parse(echo(bytes([203, 0, 113, 10]), C2, 4242, ttl=63))["identity"] == seen["identity"]
    assert parse(b"\x00" * 10) is None


def test_an_arp_request_is_parsed_as_who_has():
    arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=b"\x02\x42\x0a\x00\x00\x02", spa=C1,
                       tha=b"\x00" * 6, tpa=C2)
    frame = bytes(dpkt.ethernet.Ethernet(src=b"\x02\x42\x0a\x00\x00\x02", dst=b"\xff" * 6,
                                         type=dpkt.ethernet.ETH_TYPE_ARP, data=arp))
    assert parse(frame)["summary"] == "ARP who-has 10.0.0.3 tell 10.0.0.2"


def test_hand_made_sightings_on_a_hand_built_lab_become_one_delivered_packet_per_direction():
    snapshot = two_containers().snapshot()
    second = 1_000_000_000
    frames = [(1 * second, "c1", "eth0", 4, echo(C1, C2, 1)), (1 * second + 10, HOST, "veth-c1", 0, echo(C1, C2, 1)),
              (1 * second + 20, HOST, "veth-c2", 4, echo(C1, C2, 1)), (1 * second + 30, "c2", "eth0", 0, echo(C1, C2, 1)),
              (1 * second + 40, "c2", "eth0", 4, echo(C2, C1, 9, kind=0)),
              (1 * second + 50, HOST, "veth-c2", 0, echo(C2, C1, 9, kind=0))]
    packets = Assembly(TraceRecording(frames, {}, snapshot)).packets
    assert [len(p.hops) for p in packets] == [4, 2]
    assert packets[0].fate == "delivered to c2" and packets[0].changes == {}
    assert packets[0].flow == packets[1].flow
    assert packets[1].fate.startswith("dropped in host")   # last seen arriving on the host, for c1


def test_a_retransmission_on_the_same_interface_is_a_packet_of_its_own():
    snapshot = two_containers().snapshot()
    frames = [(10, "c1", "eth0", 4, echo(C1, C2, 1)), (20, "c1", "eth0", 4, echo(C1, C2, 1))]
    assert len(Assembly(TraceRecording(frames, {}, snapshot)).packets) == 2


def test_a_nat_rule_met_is_a_step_with_its_verdict_and_without_counters():
    lines = [
        "trace id ab12 ip nat POSTROUTING packet: oif \"eth0\" ip saddr 10.0.0.2 ip daddr 198.51.100.10 ip id 5 ",
        "trace id ab12 ip nat POSTROUTING rule ip saddr 10.0.0.0/24 oifname != \"br0\" counter packets 3 bytes 252 "
        "masquerade (verdict accept)",
        "trace id ab12 inet lablib_trace output rule meta nftrace set 1 (verdict continue)",
        "trace id cd34 ip filter FORWARD policy drop ",
    ]
    steps = netfilter_steps(HOST, lines)
    assert [str(step) for _, step in steps] == [
        'nat POSTROUTING: ip saddr 10.0.0.0/24 oifname != "br0" masquerade → accept',
        "filter FORWARD: policy drop → drop"]
    assert steps[0][0] == {"saddr": "10.0.0.2", "daddr": "198.51.100.10", "id": "5"}
    assert steps[0][1].nat == "MASQUERADE" and steps[1][1].nat is None


@pytest.mark.parametrize("name", ["masquerade-ping", "dnat-from-client", "reply-dies-at-router", "forward-drop"])
def test_every_recorded_packet_gets_a_fate(name):
    packets = assembled(name).packets
    assert packets and all(p.fate for p in packets)
    assert isinstance(overlay_for(load_trace(name).snapshot, packets), Overlay)
