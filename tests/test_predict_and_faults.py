"""Predict, then observe; find the fault — on real labs, judged from real traces,
counters and kernel state."""
from __future__ import annotations

import json

import pytest

from lablib import LabError, expect
from lablib.notebook.faults import KINDS, choose


@pytest.fixture
def routed(lab):
    lab.build(["c1", "c2"], forward=True, nat=True, dns=True)
    return lab


def test_a_prediction_is_judged_by_what_the_trace_saw(routed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = routed.predict("t-p1", "What source address will example.com see?",
                       choices={"a": "10.0.0.2", "b": "203.0.113.10"})
    p.answer = "a"
    with routed.trace("tcp port 80") as t:
        routed.sh("curl -s -m 2 http://198.51.100.10/", ns="c1")
    outcome = p.observe_trace(t, "source_at", at="world:web", because="MASQUERADE rewrote it")
    assert not outcome and outcome.observed == "203.0.113.10"
    assert "the right choice was b) 203.0.113.10" in outcome.text() and "MASQUERADE rewrote it" in outcome.text()
    with pytest.raises(LabError, match="already observed"):
        p.answer = "b"
    lines = [json.loads(line) for line in (tmp_path / ".lablib-progress.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["passed"]) for e in lines] == [("prediction-made", False), ("prediction", False)]


def test_a_prediction_made_after_the_trace_started_does_not_count(routed):
    p = routed.predict("t-p2", "Does the reply come back?", choices={"a": "yes", "b": "no"})
    with routed.trace("icmp") as t:
        routed.sh("ping -c1 -W1 198.51.100.10", ns="c1")
        p.answer = "a"
    outcome = p.observe_trace(t, "replied")
    assert outcome.observed == "yes" and not outcome and "after the experiment had started" in outcome.text()


def test_a_prediction_of_where_a_packet_dies_reads_the_trace(routed):
    routed.sh("iptables -I FORWARD -s 10.0.0.2 -j DROP")
    p = routed.predict("t-p3", "Where does c1's ping die?", choices={"a": "c1", "b": "host", "c": "world:web"},
                       answer="b")
    with routed.trace("icmp") as t:
        routed.sh("ping -c1 -W1 198.51.100.10", ns="c1", check=False)
    assert p.observe_trace(t, "dies_at")


def test_a_prediction_of_which_rule_counts_reads_the_counters(routed):
    p = routed.predict("t-p4", "Which FORWARD rule counts c1's ping?",
                       choices={"a": "-A FORWARD -i br0 -o eth0 -j ACCEPT", "b": "-A FORWARD -i eth0 -o br0 -j ACCEPT"},
                       answer="b")
    before = routed.counters()
    routed.sh("ping -c1 -W1 198.51.100.10", ns="c1")
    outcome = p.observe_counters(before, routed.counters())
    assert outcome   # the reply crosses eth0 -> br0 too: both rules counted, b among them
    q = routed.predict("t-p5", "Which rule counts it?", choices={"a": "-A FORWARD -i br0 -o br0 -j ACCEPT"},
                       answer="a")
    before = routed.counters()
    routed.sh("ping -c1 -W1 198.51.100.10", ns="c1")
    assert not q.observe_counters(before, routed.counters())


def test_the_fault_is_chosen_by_a_seed_an_instructor_can_reproduce(monkeypatch):
    monkeypatch.delenv("LABLIB_FAULT", raising=False)
    among = ["default_route", "ip_forward", "masquerade", "forward_drop", "arp"]
    assert choose("05-f1", among, "alice:05-f1") == choose("05-f1", among, "alice:05-f1")
    picked = {choose("05-f1", among, f"learner{i}:05-f1")[0] for i in range(40)}
    assert len(picked) >= 4     # learners get different faults
    monkeypatch.setenv("LABLIB_FAULT", "05-f1=arp")
    assert choose("05-f1", among)[0] == "arp"


@pytest.mark.parametrize("kind", ["default_route", "ip_forward", "masquerade", "forward_drop", "arp"])
def test_a_planted_fault_shows_its_symptom_only_and_its_repair_fixes_it(routed, kind, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", kind)
    fault = routed.plant_fault("t-f1", among=list(KINDS), probe=expect.reaches("c1", "http://198.51.100.10/"))
    shown = repr(fault)
    assert "symptom" in shown and kind not in shown
    unsolved = fault.check()
    assert not unsolved and kind not in unsolved.text()
    for command in fault.solution():
        routed.sh(command)
    solved = fault.check()
    assert solved, solved.text()
    assert kind not in json.dumps(solved.data()) and solved.data()["kind"] == "fault"


def test_a_fault_hunt_refuses_flushing_and_opening_everything(routed, monkeypatch):
    routed.sh("iptables -P FORWARD DROP")
    monkeypatch.setenv("LABLIB_FAULT", "forward_drop")
    fault = routed.plant_fault("t-f2", among=["forward_drop", "ip_forward"],
                               probe=expect.reaches("c1", "http://198.51.100.10/"))
    routed.sh("iptables -F FORWARD && iptables -P FORWARD ACCEPT")
    result = fault.check()
    assert not result and "iptables -t filter -P FORWARD DROP" in result.text()
    routed.sh("iptables -P FORWARD DROP && iptables -A FORWARD -j ACCEPT")
    result = fault.check()
    assert not result and "rule(s) that were there are gone" in result.text()


def test_a_fault_hunt_refuses_a_network_rebuilt_under_other_names(routed, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "arp")
    fault = routed.plant_fault("t-f3", among=["arp"], probe=expect.reaches("c1", "http://198.51.100.10/"))
    # c1 thrown away and made again under the same names: the stale entry went with it.
    routed.sh("ip netns delete c1 && ip netns add c1 && ip link add veth-c1 type veth peer name eth0 netns c1 "
              "&& ip link set veth-c1 master br0 up && ip -n c1 link set lo up && ip -n c1 link set eth0 up "
              "&& ip -n c1 address add 10.0.0.2/24 dev eth0 && ip -n c1 route add default via 10.0.0.1")
    result = fault.check()
    assert not result and "was deleted and made again" in result.text()
    routed.sh("ip netns delete c2")
    result = fault.check()
    assert not result and "namespace c2 was deleted" in result.text()


def test_a_fault_that_does_not_break_the_probe_is_refused(routed, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "resolv_conf")
    with pytest.raises(LabError, match="does not break the probe"):
        routed.plant_fault("t-f4", among=["resolv_conf"], probe=expect.reaches("c1", "http://198.51.100.10/"))


def test_lo_down_and_hairpin_faults_break_the_probes_they_are_for(lab, monkeypatch):
    lab.build(["c1", "c2"], forward=True, nat=True, servers={"c1": 80}, publish={8080: ("c1", 80)})
    lab.sh("bridge link set dev veth-c1 hairpin on && iptables -t nat -A POSTROUTING -s 10.0.0.2 -d 10.0.0.2 "
           "-p tcp --dport 80 -j MASQUERADE")
    for kind, probe in (("lo_down", expect.reaches("c1", "http://127.0.0.1:80/")),
                        ("hairpin", expect.reaches("c1", "http://203.0.113.10:8080/"))):
        monkeypatch.setenv("LABLIB_FAULT", kind)
        fault = lab.plant_fault("t-f5", among=["lo_down", "hairpin"], probe=probe)
        assert not fault.check()
        for command in fault.solution():
            lab.sh(command)
        assert fault.check(), kind
