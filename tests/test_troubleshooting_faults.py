"""The fault kinds of notebook 10 on real labs: a server bound to 127.0.0.1, strict
reverse-path filtering against an asymmetric route, a veth with a smaller MTU; each breaks
its probe, is refused when worked around, and passes when fixed; and the challenge set
draws per learner, gives progressive hints, and records them for the instructor."""
from __future__ import annotations

import json

import pytest

from lablib import expect
from lablib.model.errors import LabError

SERVER = expect.reaches("c2", "http://10.0.0.2/")


@pytest.fixture
def net(lab):
    lab.build(["c1", "c2"], forward="docker", nat=True, dns=True, servers={"c1": 80})
    return lab


def _solve(lab, fault):
    for command in fault.solution():
        lab.sh(command)


def test_a_server_bound_to_loopback_is_found_by_ss_and_a_dnat_to_it_is_refused(net, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "loopback_only")
    fault = net.plant_fault("t-10a", among=["loopback_only"], probe=SERVER)
    assert "127.0.0.1:80" in net.sh("ss -ltnH", ns="c1").stdout
    assert "c2 can't reach http://10.0.0.2/" in repr(fault)
    net.sh("ip netns exec c1 sysctl -qw net.ipv4.conf.all.route_localnet=1 && ip netns exec c1 iptables -t nat "
           "-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:80")
    hacked = fault.check()
    assert not hacked.passed and "redirects to the loopback address" in hacked.text()
    net.sh("ip netns exec c1 iptables -t nat -F PREROUTING && ip netns exec c1 sysctl -qw "
           "net.ipv4.conf.all.route_localnet=0")
    _solve(net, fault)
    assert "0.0.0.0:80" in net.sh("ss -ltnH", ns="c1").stdout
    assert fault.check().passed


def test_strict_rp_filter_drops_asymmetric_requests_and_loose_mode_fixes_it(net, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "rp_filter")
    fault = net.plant_fault("t-10b", among=["rp_filter"], probe=SERVER)
    assert "10.0.0.3 via 10.0.99.1 dev eth1" in net.sh("ip route", ns="c1").stdout
    dropped = net.sh("nstat -az TcpExtIPReversePathFilter", ns="c1").stdout.split()
    assert int(dropped[dropped.index("TcpExtIPReversePathFilter") + 1]) > 0
    # Making the traffic symmetric by deleting the designed route is refused.
    net.sh("ip netns exec c1 ip route del 10.0.0.3/32")
    removed = fault.check()
    assert not removed.passed and "part of the design" in removed.text()
    net.sh("ip netns exec c1 ip route add 10.0.0.3/32 via 10.0.99.1 dev eth1")
    _solve(net, fault)
    assert fault.check().passed


def test_a_smaller_mtu_on_one_veth_kills_full_size_frames_only(net, monkeypatch):
    monkeypatch.setenv("LABLIB_FAULT", "mtu")
    big = expect.reaches("c2", "10.0.0.2", size=1472)
    fault = net.plant_fault("t-10c", among=["mtu"], probe=big)
    assert "mtu 1400" in net.sh("ip link show veth-c2").stdout
    assert net.sh("ping -c1 -W1 10.0.0.2", ns="c2", check=False).exit_code == 0
    net.sh("ip netns exec c2 ip link set eth0 mtu 1400")          # shrinking the container too is no fix
    assert not fault.check().passed
    net.sh("ip netns exec c2 ip link set eth0 mtu 1500")
    _solve(net, fault)
    assert fault.check().passed


def test_a_challenge_set_draws_per_learner_and_records_hints(net, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABLIB_FAULT", raising=False)
    probes = {"ip_forward": expect.reaches("c2", "http://example.com/"),
              "resolv_conf": expect.reaches("c2", "http://example.com/"),
              "lo_down": expect.reaches("c1", "http://127.0.0.1/")}
    alice = net.fault_hunts("t-10d", probes=probes, count=2, seed="alice:t-10d")
    assert alice.kinds == net.fault_hunts("t-10d", probes=probes, count=2, seed="alice:t-10d").kinds
    draws = {tuple(net.fault_hunts("t-10d", probes=probes, count=2, seed=f"{u}:t-10d").kinds)
             for u in ("alice", "bob", "carol", "dave", "erin")}
    assert len(draws) > 1
    fault = alice.next()
    with pytest.raises(LabError, match="not solved yet"):
        alice.next()
    hints = [fault.hint() for _ in range(3)]
    assert [h.number for h in hints] == [1, 2, 3] and "The fix" in hints[2].text
    _solve(net, fault)
    assert fault.check().passed
    alice.next()
    lines = [json.loads(line) for line in (tmp_path / ".lablib-progress.jsonl").read_text().splitlines()]
    solved = [e for e in lines if e["exercise"] == "t-10d.1" and e["kind"] not in ("fault-planted", "fault-hint")]
    assert solved[-1]["fault"] == alice.kinds[0] and solved[-1]["hints"] == 3 and solved[-1]["passed"]
    from lablib.course.progress import fault_hunts
    table = fault_hunts([str(tmp_path)])
    row = table[table["exercise"] == "t-10d.1"].iloc[0]
    assert (row["fault"], row["hints"], row["solved"]) == (alice.kinds[0], 3, "✅")
    from lablib.__main__ import main
    capsys.readouterr()
    assert main(["progress", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "fault hunts" in printed and alice.kinds[0] in printed and "t-10d.2" in printed
