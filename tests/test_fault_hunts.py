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
