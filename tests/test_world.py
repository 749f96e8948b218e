"""The simulated outside world: reachable, observable from both ends, and sealed off."""
from __future__ import annotations

import re

from lablib import Lab


def test_example_com_reports_the_address_it_saw(lab):
    assert lab.sh("curl -s http://example.com/ip").stdout == "203.0.113.10\n"
    assert "You came from 192.0.2.10" in lab.sh("curl -s example.com", ns="world:client").stdout


def test_the_lab_host_resolves_through_a_stub_on_127_0_0_53(lab):
    assert "nameserver 127.0.0.53" in lab.sh("cat /etc/resolv.conf").stdout
    assert re.search(r"127\.0\.0\.53:53\s.*dnsmasq", lab.sh("ss -Hlnup").stdout)
    assert lab.sh("dig +short example.com").stdout == "198.51.100.10\n"
    assert lab.sh("dig +short -x 198.51.100.10").stdout == "example.com.\n"
    assert "NXDOMAIN" in lab.sh("dig www.baidu.com @198.51.100.53").stdout


def test_a_new_namespace_inherits_the_stub_and_fails_fast(lab):
    """Seed 001 §6 / Docker's 127.0.0.53 problem: the stub is not in the new namespace."""
    lab.build(["c1"], nat=True)
    result = lab.sh("getent hosts example.com", ns="c1", check=False, timeout=5)
    assert result.exit_code == 2 and result.duration < 3


def test_every_outside_host_answers_ping(lab):
    for address in ("203.0.113.1", "198.51.100.1", "198.51.100.10", "198.51.100.53", "192.0.2.1", "192.0.2.10"):
        assert "1 received" in lab.sh(f"ping -c1 -W1 {address}").stdout


def test_the_outside_world_is_not_in_ip_netns_list_but_lablib_reaches_it(lab):
    assert lab.sh("ip netns list").stdout == ""
    assert lab.namespaces() == []
    assert "192.0.2.10/24" in lab.sh("ip -br addr", ns="world:client").stdout


def test_a_reply_to_a_private_address_dies_at_the_internet_router(lab):
    """Like the real internet: the router knows its own networks and the uplink, nothing else."""
    routes = lab.sh("ip route", ns="world:internet").stdout
    assert "default" not in routes
    assert sorted(re.findall(r"^(\S+/\d+)", routes, re.M)) == ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
    lab.build(["c1"], forward=True)
    capture = lab.spawn("tcpdump -i eth0 -n -l icmp", ns="world:web", ready_text="listening")
    lab.sh("ping -c1 -W1 198.51.100.10", ns="c1", check=False)
    lab.sh("sleep 0.2")
    assert "IP 10.0.0.2 > 198.51.100.10: ICMP echo request" in capture.stop()   # the request arrived


def test_nothing_outside_the_documentation_ranges_is_reachable(lab):
    for address in ("8.8.8.8", "114.114.114.114", "10.255.0.1", "192.168.0.1"):
        result = lab.sh(f"ping -c1 -W1 {address}", check=False)
        assert result.exit_code != 0
    links = lab.sh("ip -o link | awk -F': ' '{print $2}'").stdout.split()
    assert [name.split("@")[0] for name in links] == ["lo", "eth0"]
    # The uplink's far end is the simulated router, never a real interface.
    assert "lab-host@" in lab.sh("ip -o link", ns="world:internet").stdout


def test_the_lab_tells_the_learner_its_addresses(capsys):
    with Lab() as lab:
        printed = capsys.readouterr().out
        for text in ("203.0.113.10", "203.0.113.1", "198.51.100.10", "198.51.100.53", "192.0.2.10", "world:client"):
            assert text in printed
        assert lab.world.web.address == "198.51.100.10"
        assert lab.world.client.ns == "world:client"
