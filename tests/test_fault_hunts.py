"""Fault hunts (lab.plant_fault) on real labs: the fault breaks the probe, the check sees
the fix, and a wholesale workaround is refused."""
from __future__ import annotations


def test_a_fault_hunt_can_probe_from_the_outside_world(lab):
    """07's hunt: the outside client's published port, broken by a FORWARD DROP for it."""
    from lablib import expect
    lab.build(["web"], subnet="172.17.0.0/16", bridge="docker0", nat=True, servers={"web": 80},
              publish={8080: ("web", 80)})
    fault = lab.plant_fault("07-5 test", among=["forward_drop"],
                            probe=expect.reaches("world:client", "http://203.0.113.10:8080/"))
    assert "-A FORWARD -s 192.0.2.10/32 -j DROP" in lab.sh("iptables -S FORWARD").stdout
    lab.sh("iptables -I FORWARD -j ACCEPT")
    refused = fault.check()
    assert not refused.passed and "accepts everything" in refused.text()
    lab.sh("iptables -D FORWARD -j ACCEPT && iptables -D FORWARD -s 192.0.2.10 -j DROP")
    assert fault.check().passed


def test_a_container_on_the_wrong_network_is_found_by_its_cable(lab):
    """08's hunt: the container's veth moved to another network's bridge (a wrong --network);
    the fix is to plug it back, not to give the container an address on the wrong network."""
    from lablib import expect
    lab.build(["app"], subnet="172.18.0.0/16", bridge="br-app", forward=True, nat=True)
    lab.sh("ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && ip link set docker0 up")
    fault = lab.plant_fault("08-3 test", among=["wrong_network"],
                            probe=expect.reaches("app", "http://198.51.100.10/"))
    assert "master docker0" in lab.sh("ip link show veth-app").stdout
    assert "wrong_network" not in repr(fault) and "symptom" in repr(fault)
    assert not fault.check().passed
    assert fault.solution() == ["ip link set veth-app master br-app"]
    lab.sh(fault.solution()[0])
    fixed = fault.check()
    assert fixed.passed and "the fault was: wrong_network" in fixed.text()


def test_wrong_network_needs_a_second_bridge(lab):
    import pytest

    from lablib import LabError, expect
    lab.build(["app"], subnet="172.18.0.0/16", bridge="br-app", forward=True, nat=True)
    with pytest.raises(LabError, match="needs a second bridge"):
        lab.plant_fault("08-3 test", among=["wrong_network"], probe=expect.reaches("app", "http://198.51.100.10/"))
