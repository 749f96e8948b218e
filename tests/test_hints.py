"""A check's hint names the first cause, not what followed from it."""
from __future__ import annotations

from lablib import expect


def test_a_missing_route_over_a_down_link_is_hinted_as_the_down_link(lab):
    lab.sh("ip netns add c1 && ip link add eth0 netns c1 type veth peer name veth-c1 && "
           "ip -n c1 addr add 10.0.0.2/24 dev eth0")   # eth0 left DOWN: the kernel refuses the route
    claim = expect.route("c1", "default", via="10.0.0.1")
    assert lab.sh("ip -n c1 route add default via 10.0.0.1", check=False).exit_code != 0
    verdict = claim.judge(lab, lab.snapshot(kinds={"links", "routes"}))
    assert not verdict.ok
    assert verdict.hint.startswith("eth0 is NO-CARRIER in namespace c1") or verdict.hint.startswith(
        "eth0 is DOWN in namespace c1"), verdict.hint
    assert "ip netns exec c1 ip link set eth0 up" in verdict.hint
    lab.sh("ip -n c1 link set eth0 up && ip link set veth-c1 up && ip -n c1 route add default via 10.0.0.1")
    assert claim.judge(lab, lab.snapshot(kinds={"links", "routes"})).ok


def test_a_missing_route_over_an_up_link_still_says_add_one(lab):
    lab.sh("ip netns add c1 && ip link add eth0 netns c1 type veth peer name veth-c1 && "
           "ip -n c1 addr add 10.0.0.2/24 dev eth0 && ip -n c1 link set eth0 up && ip link set veth-c1 up")
    verdict = expect.route("c1", "default", via="10.0.0.1").judge(lab, lab.snapshot(kinds={"links", "routes"}))
    assert not verdict.ok and verdict.hint.startswith("no route to default there; add one")
