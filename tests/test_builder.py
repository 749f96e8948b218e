"""lab.build(): a known state in one call, made of the commands a learner would type."""
from __future__ import annotations

import pytest

from lablib import LabError


def test_build_makes_containers_on_a_bridge_with_addresses_and_routes(lab):
    network = lab.build(["c1", "c2"], bridge="br0", subnet="10.0.0.0/24")
    assert network.containers == {"c1": "10.0.0.2", "c2": "10.0.0.3"} and network.gateway == "10.0.0.1"
    assert sorted(lab.namespaces()) == ["c1", "c2"]
    assert "master br0" in lab.sh("ip link show veth-c1").stdout
    assert "default via 10.0.0.1 dev eth0" in lab.sh("ip route", ns="c2").stdout
    assert "1 received" in lab.sh("ping -c1 10.0.0.3", ns="c1").stdout
    assert "ip netns exec c1 ip addr add 10.0.0.2/24 dev eth0" in network.script


def test_build_with_nat_dns_server_and_published_port_is_a_working_docker_like_host(lab):
    network = lab.build(["web", "client"], subnet="172.17.0.0/16", nat=True, dns=True,
                        servers={"web": 80}, publish={8080: ("web", 80)})
    assert "You came from 203.0.113.10" in lab.sh("curl -s example.com", ns="client").stdout
    assert "Directory listing" in lab.sh("curl -s 203.0.113.10:8080", ns="world:client").stdout
    assert "Directory listing" in lab.sh("curl -s 203.0.113.10:8080").stdout   # OUTPUT-chain DNAT
    assert "-A POSTROUTING -s 172.17.0.0/16 ! -o br0 -j MASQUERADE" in lab.sh("iptables-save -t nat").stdout
    assert network.servers["web"].running


def test_build_shows_its_commands(lab, capsys):
    lab.build(["c1"], show=True)
    assert "ip netns exec c1 ip route add default via 10.0.0.1" in capsys.readouterr().out


def test_build_refuses_what_cannot_fit(lab):
    with pytest.raises(LabError, match="no room for 3 containers"):
        lab.build(3, subnet="10.0.0.0/30")
