"""Why a probe failed: the first missing piece on the way, read from a snapshot."""
from __future__ import annotations

from dataclasses import dataclass

from lablib.model.state import HOST
from lablib.views.diagnosis import canonical_ns, command_prefix, describe_ns, diagnose
from unit.snapshots import Build, two_containers


@dataclass
class Probe:
    """What a failed ping or curl printed (the only part of it diagnose reads)."""
    stdout: str = ""
    stderr: str = ""


def test_a_loopback_probe_with_lo_down_says_to_bring_lo_up():
    lab = Build()
    lab.ns("c1", lo_up=False)
    hint = diagnose(lab.snapshot(), "c1", "127.0.0.1", Probe())
    assert hint == "lo is DOWN in namespace c1: ip netns exec c1 ip link set lo up"


def test_lo_down_in_the_lab_host_gives_the_command_without_ip_netns_exec():
    lab = Build()
    lab.link(HOST, "lo", "loopback", up=False)
    assert diagnose(lab.snapshot(), HOST, "127.0.0.1", Probe()) == \
        "lo is DOWN in the lab host: ip link set lo up"


def test_two_routes_for_one_subnet_says_the_first_wins():
    lab = Build()
    lab.veth(("c1", "veth-a"), (HOST, "a"), addresses=(["10.0.0.1/24"], []))
    lab.veth(("c1", "veth-b"), (HOST, "b"), addresses=(["10.0.0.2/24"], []))
    lab.route("c1", "10.0.0.0/24", "veth-a")
    lab.route("c1", "10.0.0.0/24", "veth-b")
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.3", Probe())
    assert hint.startswith("2 routes cover 10.0.0.0/24 (veth-a, veth-b): the first one wins")
    assert "leaves by veth-a only" in hint and "a bridge" in hint


def test_forward_policy_drop_with_no_accepting_rule_is_named():
    lab = two_containers()
    lab.rule(HOST, "filter", "FORWARD", "policy DROP")
    hint = diagnose(lab.snapshot(), "c1", "198.51.100.10", Probe())
    assert hint == "the lab host's FORWARD policy is DROP and no FORWARD rule accepts anything yet"


def test_forward_policy_drop_with_some_accepting_rules_says_to_trace():
    lab = two_containers()
    lab.rule(HOST, "filter", "FORWARD", "policy DROP")
    lab.rule(HOST, "filter", "FORWARD", "-A FORWARD -i br0 -o br0 -j ACCEPT")
    hint = diagnose(lab.snapshot(), "c1", "198.51.100.10", Probe())
    assert hint.startswith("the lab host's FORWARD policy is DROP; 1 FORWARD rule(s) accept some traffic")
    assert "lab.trace()" in hint


def test_ip_forward_0_is_named_when_the_packet_must_be_routed_by_the_host():
    lab = two_containers(forward="0")
    hint = diagnose(lab.snapshot(), "c1", "198.51.100.10", Probe())
    assert hint == "the packet must be routed by the lab host, where net.ipv4.ip_forward is 0"


def test_ip_forward_0_does_not_matter_on_the_containers_own_subnet():
    lab = two_containers(forward="0")
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.3", Probe())
    assert "ip_forward" not in hint
    assert hint == "the route to 10.0.0.0/24 on eth0 is there, but no answer came back: trace it with lab.trace()"


def test_no_route_says_to_add_an_address_or_a_default_route():
    lab = Build()
    lab.veth(("c1", "eth0"), (HOST, "veth-c1"), addresses=(["10.0.0.2/24"], []))
    lab.route("c1", "10.0.0.0/24", "eth0")
    hint = diagnose(lab.snapshot(), "c1", "198.51.100.10", Probe())
    assert hint == "namespace c1 has no route to 198.51.100.10: add an address on its subnet, or a default route"


def test_no_interface_up_besides_lo_is_said_first():
    lab = Build()
    lab.veth(("c1", "eth0"), (HOST, "veth-c1"), up=False)
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.3", Probe())
    assert hint == "namespace c1 has no interface that is up (besides lo)"


def test_a_route_out_of_a_down_interface_names_the_interface():
    lab = Build()
    eth0, _ = lab.veth(("c1", "eth0"), (HOST, "veth-c1"), addresses=(["10.0.0.2/24"], []))
    lab.link("c1", "eth1", "veth")
    eth0.admin_up = eth0.lower_up = False
    lab.route("c1", "10.0.0.0/24", "eth0")
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.3", Probe())
    assert hint == "the route to 10.0.0.3 leaves by eth0, which is DOWN"


def test_connection_refused_means_nothing_listens_there():
    lab = two_containers()
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.3", Probe(stderr="curl: (7) Failed to connect: Connection refused"))
    assert hint == "10.0.0.3 answered, but nothing listens on that port there"


def test_the_own_address_with_no_answer_asks_whether_a_server_runs():
    lab = two_containers()
    hint = diagnose(lab.snapshot(), "c1", "10.0.0.2", Probe())
    assert hint.startswith("10.0.0.2 is namespace c1's own address, but nothing answered")


def test_a_name_that_did_not_resolve_quotes_the_resolver():
    lab = two_containers()
    hint = diagnose(lab.snapshot(), "c1", "example.com", Probe(stderr="curl: (6) Could not resolve host: example.com"))
    assert hint == "example.com could not be resolved there: curl: (6) Could not resolve host: example.com"


def test_only_the_default_route_matching_asks_whether_the_address_is_right():
    lab = two_containers()
    hint = diagnose(lab.snapshot(), HOST, "198.51.100.10", Probe())
    assert hint.startswith("only the default route (via 203.0.113.1 on eth0) matches 198.51.100.10")


def test_namespace_names_are_said_and_typed_as_a_learner_would():
    assert canonical_ns(None) == canonical_ns("") == canonical_ns("host") == HOST
    assert describe_ns(None) == "the lab host" and describe_ns("c1") == "namespace c1"
    assert command_prefix("host") == "" and command_prefix("c1") == "ip netns exec c1 "
