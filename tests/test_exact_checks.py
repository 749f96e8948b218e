"""Checks judge exactly what they name, on real labs: rules read as fields and in order,
policies that still decide, refusals told apart, DNS asked for real, MACs and FDB entries."""
from __future__ import annotations

import pytest

from lablib import expect


def verdicts(result) -> list[bool]:
    return [v.ok for v in result.verdicts]


@pytest.fixture
def routed(lab):
    """c1, c2 on br0, forwarded and masqueraded, FORWARD policy DROP, a server in c2."""
    lab.build(["c1", "c2"], forward=True, nat=True, dns=True, servers={"c2": 80})
    lab.sh("iptables -P FORWARD DROP")
    return lab


def test_a_negated_out_interface_does_not_meet_a_claim_for_that_interface(routed):
    routed.sh("iptables -F FORWARD && iptables -A FORWARD -i br0 ! -o eth0 -j ACCEPT")
    claim = expect.rule("filter", "FORWARD", "--in-interface br0", "--out-interface eth0", "--jump ACCEPT")
    result = routed.check("t-1", claim)
    assert not result and "the opposite of -o eth0" in result.verdicts[0].hint
    assert "iptables -D FORWARD -i br0 ! -o eth0 -j ACCEPT && iptables -A FORWARD -i br0 -o eth0 -j ACCEPT" \
        in result.verdicts[0].hint
    routed.sh("iptables -A FORWARD -i br0 -o eth0 -j ACCEPT")
    assert routed.check("t-1", claim)


def test_a_rule_for_one_protocol_does_not_meet_a_claim_for_all_traffic(routed):
    routed.sh("iptables -F FORWARD && iptables -A FORWARD -i br0 -o eth0 -p udp -j ACCEPT")
    result = routed.check("t-2", expect.rule("filter", "FORWARD", "-i br0", "-o eth0", "-j ACCEPT"))
    assert not result and "it also requires -p udp" in result.verdicts[0].hint


def test_a_drop_policy_under_an_accept_everything_rule_is_not_drop(routed):
    policy = expect.policy("filter", "FORWARD", "DROP")
    assert routed.check("t-3", policy)
    routed.sh("iptables -A FORWARD -j ACCEPT")
    result = routed.check("t-3", policy)
    assert not result and "iptables -D FORWARD -j ACCEPT" in result.verdicts[0].hint


def test_a_rule_after_docker_users_return_is_never_reached(routed):
    routed.sh("iptables -N DOCKER-USER && iptables -I FORWARD -j DOCKER-USER && iptables -A DOCKER-USER -j RETURN "
              "&& iptables -A DOCKER-USER -s 192.0.2.10 -j DROP")
    claim = expect.rule("filter", "DOCKER-USER", "-s 192.0.2.10", "-j DROP")
    result = routed.check("t-4", claim)
    assert not result and "never reached" in result.verdicts[0].hint
    routed.sh("iptables -D DOCKER-USER -s 192.0.2.10 -j DROP && iptables -I DOCKER-USER -s 192.0.2.10 -j DROP")
    assert routed.check("t-4", claim)


def test_not_reaches_says_whether_a_rule_refused_or_nothing_listens(routed):
    # Nothing listens on port 81: refused by the kernel, not by a rule.
    routed.sh("iptables -A FORWARD -i br0 -o br0 -j ACCEPT")
    nobody = routed.check("t-5", expect.not_reaches("c1", "10.0.0.3:81"))
    assert nobody and "nothing listens" in nobody.verdicts[0].seen
    assert not routed.check("t-5", expect.closed("c1", "10.0.0.3:81"))
    # A REJECT rule for port 80: its counter moves, and the claim says so.
    routed.sh("iptables -I FORWARD -p tcp --dport 80 -j REJECT --reject-with tcp-reset")
    refused = routed.check("t-5", expect.closed("c1", "10.0.0.3:80"))
    assert refused and "refused by a rule" in refused.verdicts[0].seen and "REJECT" in refused.verdicts[0].seen


def test_not_reaches_says_lo_is_down(lab):
    lab.sh("ip netns add c1")
    result = lab.check("t-6", expect.not_reaches("c1", "127.0.0.1:8080", because="nothing-listens"))
    assert not result and result.verdicts[0].seen == "lo is down"


def test_resolves_in_a_namespace_asks_its_nameserver_not_the_hosts_etc_hosts(routed):
    claim = expect.resolves("c1", "example.com", to="198.51.100.10")
    assert routed.check("t-7", claim)
    routed.sh("printf 'nameserver 127.0.0.53\\n' > /etc/netns/c1/resolv.conf")
    routed.sh("echo '198.51.100.10 example.com' >> /etc/hosts")
    assert routed.sh("getent hosts example.com", ns="c1").ok          # getent is fooled ...
    result = routed.check("t-7", claim)                                 # ... the claim is not
    assert not result and "/etc/hosts" in result.verdicts[0].hint and "not DNS" in result.verdicts[0].hint


def test_mac_and_fdb_claims_read_the_kernel(routed):
    routed.sh("ip link set eth0 address 02:42:ac:11:00:04", ns="c1")
    assert routed.check("t-8", expect.mac("c1", "eth0", "02:42:ac:11:00:04"))
    wrong = routed.check("t-8", expect.mac("c1", "eth0", "02:42:ac:11:00:05"))
    assert not wrong and "ip link set eth0 address 02:42:ac:11:00:05" in wrong.verdicts[0].hint
    routed.sh("ping -c1 -W1 10.0.0.1", ns="c1")
    assert routed.check("t-8", expect.fdb("br0", "02:42:ac:11:00:04", port="veth-c1"))
    assert not routed.check("t-8", expect.fdb("br0", "02:42:ac:11:00:04", port="veth-c2"))


def test_a_stale_arp_entry_is_named_with_the_command_that_deletes_it(routed):
    routed.sh("ip neigh replace 10.0.0.1 lladdr 02:00:5e:00:00:66 dev eth0 nud permanent", ns="c1")
    result = routed.check("t-9", expect.neighbour("c1", "10.0.0.1"))
    assert not result and "ip netns exec c1 ip neigh del 10.0.0.1 dev eth0" in result.verdicts[0].hint


def test_a_route_missing_because_its_link_is_down_says_the_link_is_down(lab):
    lab.sh("ip link add v0 type veth peer name v1 && ip address add 10.9.0.1/24 dev v0")
    result = lab.check("t-10", expect.route("host", "10.9.0.0/24", dev="v0"))
    assert not result and "v0 is DOWN" in result.verdicts[0].hint and "ip link set v0 up" in result.verdicts[0].hint


def test_a_docker_like_forward_chain_is_drop_with_conntrack_accepts(lab):
    lab.build(["c1", "c2"], forward="docker", nat=True)
    result = lab.check("t-11", expect.policy("filter", "FORWARD", "DROP"),
                       expect.rule("filter", "FORWARD", "-o br0", "--ctstate RELATED,ESTABLISHED", "-j ACCEPT"),
                       expect.rule("filter", "FORWARD", "-i br0", "! -o br0", "-j ACCEPT"),
                       expect.reaches("c1", "http://198.51.100.10/"),
                       expect.reaches("c1", "10.0.0.3"))
    assert result, result.text()
