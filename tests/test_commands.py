"""Every command family of the syllabus runs verbatim in a lab host, with its real effect.

Commands are typed as the seed articles type them (sudo included); the assertions
check the kernel's state or the traffic that results, not just an exit code.
"""
from __future__ import annotations

import re

import pytest

from lablib import CommandFailed


def test_sudo_ip_netns_add_list_and_exec(lab):
    lab.sh("sudo ip netns add netns_dustin")
    assert lab.sh("ip netns list").stdout.split() == ["netns_dustin"]
    inside = lab.sh("sudo ip netns exec netns_dustin ip address list").stdout
    assert re.search(r"1: lo: <LOOPBACK> .* state DOWN", inside)
    assert "eth0" not in inside   # the namespace has its own, empty stack


def test_lo_down_means_couldnt_connect_until_ip_link_set_lo_up(lab):
    """Seed 001 §2–3: a server in a new namespace is unreachable until lo is up."""
    lab.sh("sudo ip netns add netns_dustin")
    lab.spawn("python3 -m http.server 8080", ns="netns_dustin")
    failed = lab.sh("sudo ip netns exec netns_dustin curl -sS localhost:8080", check=False)
    assert failed.exit_code == 7 and "Couldn't connect to server" in failed.stderr
    lab.sh("sudo ip netns exec netns_dustin ip link set dev lo up")
    lab.sh("for i in $(seq 50); do ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.05; done", ns="netns_dustin")
    assert "Directory listing" in lab.sh("sudo ip netns exec netns_dustin curl -sS localhost:8080").stdout


def test_a_second_server_on_the_same_port_is_address_already_in_use(lab):
    """Seed 001 §1: one port, one listener per namespace."""
    lab.spawn("python3 -m http.server 8080", ready_port=8080)
    second = lab.sh("timeout 5 python3 -m http.server 8080", check=False)
    assert "Address already in use" in second.stderr
    lab.sh("ip netns add other && ip netns exec other ip link set lo up")
    lab.spawn("python3 -m http.server 8080", ns="other", ready_port=8080)   # its own port space


def test_veth_pair_addresses_ping_both_ways_and_default_route(lab):
    """Seed 001 §4–5, verbatim."""
    lab.sh("""
        sudo ip netns add netns_dustin
        sudo ip link add dev veth_dustin type veth peer name veth_ns_dustin
        sudo ip link set dev veth_dustin up
        sudo ip link set veth_ns_dustin netns netns_dustin
        sudo ip netns exec netns_dustin ip link set dev lo up
        sudo ip netns exec netns_dustin ip link set dev veth_ns_dustin up
        sudo ip address add 10.0.0.10/24 dev veth_dustin
        sudo ip netns exec netns_dustin ip address add 10.0.0.11/24 dev veth_ns_dustin
    """)
    host_end = lab.sh("ip link show veth_dustin").stdout
    assert "veth_dustin@if" in host_end and "link-netns netns_dustin" in host_end
    for command in ("ping 10.0.0.11 -c 1", "sudo ip netns exec netns_dustin ping 10.0.0.10 -c 1"):
        assert "1 received" in lab.sh(command).stdout
    lab.spawn("python3 -m http.server 8080", ns="netns_dustin", ready_port=8080)
    assert "Directory listing" in lab.sh("curl -s 10.0.0.11:8080").stdout
    # The host's other address (its uplink) is not on the namespace's only subnet...
    lab.spawn("python3 -m http.server 8080 --bind 203.0.113.10", ready_port=8080)
    unreachable = lab.sh("sudo ip netns exec netns_dustin curl -sS -m 3 203.0.113.10:8080", check=False)
    assert unreachable.exit_code == 7
    # ...until a default route points at the peer.
    lab.sh("sudo ip netns exec netns_dustin ip route add default via 10.0.0.10")
    assert "Directory listing" in lab.sh("sudo ip netns exec netns_dustin curl -s 203.0.113.10:8080").stdout


def test_etc_netns_resolv_conf_applies_inside_ip_netns_exec(lab):
    """Seed 001 §7: per-namespace resolv.conf, with forwarding and MASQUERADE in place."""
    lab.build(["netns_dustin"], subnet="10.0.0.0/24", nat=True)
    stuck = lab.sh("sudo ip netns exec netns_dustin ping -c1 example.com", check=False)
    assert stuck.exit_code == 2 and "name resolution" in stuck.stderr   # the host's 127.0.0.53 is not there
    lab.sh("sudo mkdir -p /etc/netns/netns_dustin")
    lab.sh('echo "nameserver 198.51.100.53" | sudo tee /etc/netns/netns_dustin/resolv.conf')
    assert "198.51.100.53" in lab.sh("sudo ip netns exec netns_dustin cat /etc/resolv.conf").stdout
    assert "1 received" in lab.sh("sudo ip netns exec netns_dustin ping -c1 example.com").stdout
    assert "nameserver 127.0.0.53" in lab.sh("cat /etc/resolv.conf").stdout   # the host's is unchanged


def test_ip_forward_through_sysctl_proc_and_sysctl_conf(lab):
    """Seed 001 §6 and 003 §5.3.1: three ways to switch forwarding on, each real."""
    read = "cat /proc/sys/net/ipv4/ip_forward"
    lab.sh("sudo sysctl -w net.ipv4.ip_forward=1")
    assert lab.sh(read).stdout.strip() == "1"
    lab.sh("echo 0 | sudo tee /proc/sys/net/ipv4/ip_forward")
    assert lab.sh(read).stdout.strip() == "0"
    lab.sh('cat /etc/sysctl.conf | grep "^net.ipv4.ip_forward=1" || '
           'echo "net.ipv4.ip_forward=1" | sudo tee -a /etc/sysctl.conf')
    lab.sh("sudo sysctl -p")
    assert lab.sh(read).stdout.strip() == "1"


def test_iptables_masquerade_rewrites_the_source_the_server_sees(lab):
    """Seed 003 §5.3.1: without NAT the reply cannot come back; with MASQUERADE it can."""
    lab.build(["test-ns"], subnet="192.168.100.0/24", forward=True)
    no_nat = lab.sh("sudo ip netns exec test-ns curl -sS -m 2 198.51.100.10", check=False)
    assert no_nat.exit_code == 28   # the server answered 192.168.100.2, which the internet cannot route
    lab.sh("sudo iptables -t nat -A POSTROUTING -s 192.168.100.0/24 -j MASQUERADE")
    reply = lab.sh("sudo ip netns exec test-ns curl -s 198.51.100.10").stdout
    assert "You came from 203.0.113.10" in reply
    listing = lab.sh("sudo iptables -t nat -L POSTROUTING").stdout
    assert re.search(r"MASQUERADE\s+all\s+--\s+192\.168\.100\.0/24\s+anywhere", listing)
    counted = lab.sh("iptables -t nat -L POSTROUTING -v -n -x").stdout
    assert re.search(r"^\s+[1-9]\d*\s+\d+\s+MASQUERADE", counted, re.M)
    assert "src=192.168.100.2 dst=198.51.100.10" in lab.sh("conntrack -L -p tcp 2>/dev/null").stdout


def test_dnat_publishes_a_container_port_to_the_outside_client(lab):
    """Seed 003 §5.3.2: DNAT in PREROUTING plus a FORWARD accept."""
    lab.build(["test-ns"], subnet="192.168.100.0/24", forward=True, servers={"test-ns": 80})
    lab.sh("sudo iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 192.168.100.2:80")
    lab.sh("sudo iptables -A FORWARD -p tcp -d 192.168.100.2 --dport 80 -j ACCEPT")
    assert "to:192.168.100.2:80" in lab.sh("sudo iptables -t nat -L PREROUTING").stdout
    assert "Directory listing" in lab.sh("curl -s -m 3 203.0.113.10:8080", ns="world:client").stdout


def test_nft_sees_iptables_rules_and_manages_its_own(lab):
    lab.sh("iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE")
    assert "masquerade" in lab.sh("nft list ruleset").stdout
    lab.sh("nft add table inet lab && nft add chain inet lab input '{ type filter hook input priority 0; }'"
           " && nft add rule inet lab input icmp type echo-request counter")
    lab.sh("ping -c1 127.0.0.1")
    assert re.search(r"counter packets [1-9]", lab.sh("nft list table inet lab").stdout)


def test_bridge_fdb_learns_macs_and_ip_neigh_fills_after_ping(two_containers):
    lab = two_containers
    mac_c2 = lab.sh("cat /sys/class/net/eth0/address", ns="c2").stdout.strip()
    lab.sh("bridge fdb flush dev br0 dynamic")   # IPv6 neighbour discovery may have taught it already
    lab.sh("ping -c1 10.0.0.3", ns="c1")
    assert re.search(rf"{mac_c2} dev veth-c2 master br0", lab.sh("bridge fdb show br br0").stdout)
    assert "10.0.0.3 dev eth0 lladdr " + mac_c2 in lab.sh("ip neigh", ns="c1").stdout


def test_forward_policy_drop_blocks_bridged_traffic_until_accepted(two_containers):
    """Seed 001 §9 under Docker's FORWARD policy DROP, with bridge-nf-call-iptables=1."""
    lab = two_containers
    lab.sh("iptables -P FORWARD DROP")
    assert lab.sh("ping -c1 -W1 10.0.0.3", ns="c1", check=False).exit_code == 1
    lab.sh("sudo iptables --append FORWARD --in-interface br0 --out-interface br0 --jump ACCEPT")
    assert "1 received" in lab.sh("ping -c1 -W1 10.0.0.3", ns="c1").stdout
    lab.sh("iptables -D FORWARD -i br0 -o br0 -j ACCEPT && sysctl -w net.bridge.bridge-nf-call-iptables=0")
    assert "1 received" in lab.sh("ping -c1 -W1 10.0.0.3", ns="c1").stdout   # bridged, not filtered


def test_tcpdump_runs_as_typed_and_captures_on_the_bridge(two_containers):
    lab = two_containers
    capture = lab.spawn("sudo tcpdump -i br0 -n -l icmp", ready_text="listening on br0")
    lab.sh("ping -c1 10.0.0.3", ns="c1")
    lab.sh("sleep 0.2")
    log = capture.stop()
    assert re.search(r"IP 10\.0\.0\.2 > 10\.0\.0\.3: ICMP echo request", log), log
    assert "Couldn't change" not in log


def test_tcpdump_writes_a_pcap_that_tcpdump_reads_back(two_containers):
    lab = two_containers
    lab.spawn("tcpdump -i br0 -n -c 2 -U -w /tmp/lab-capture.pcap icmp", ready_text="listening on br0")
    lab.sh("ping -c1 10.0.0.3", ns="c1")
    lab.sh("for i in $(seq 50); do [ -s /tmp/lab-capture.pcap ] && tcpdump -r /tmp/lab-capture.pcap 2>/dev/null | grep -q reply && break; sleep 0.05; done")
    assert "ICMP echo reply" in lab.sh("tcpdump -n -r /tmp/lab-capture.pcap").stdout
    lab.sh("rm /tmp/lab-capture.pcap")


def test_nsenter_by_pid_enters_a_containers_network(two_containers):
    """Seed 004: nsenter -n -t PID, for containers without network tools."""
    lab = two_containers
    server = lab.spawn("sleep 300", ns="c1")
    assert "10.0.0.2/24" in lab.sh(f"nsenter -n -t {server.pid} ip -br addr").stdout


def test_dnsmasq_runs_as_typed(lab):
    lab.spawn("dnsmasq --keep-in-foreground --listen-address=127.0.0.9 --bind-interfaces "
              "--no-resolv --no-hosts --address=/lab.test/10.0.0.99", ready_port=53)
    assert lab.sh("dig +short lab.test @127.0.0.9").stdout.strip() == "10.0.0.99"


def test_net_tools_route_and_netstat(lab):
    assert re.search(r"0\.0\.0\.0\s+203\.0\.113\.1\s+0\.0\.0\.0\s+UG", lab.sh("route -n").stdout)
    lab.spawn("python3 -m http.server 8080", ready_port=8080)
    assert re.search(r":8080 .* LISTEN\s+\d+/python3", lab.sh("netstat -tlnp").stdout)


def test_modprobe_succeeds_for_features_present_and_names_the_fix_otherwise(lab):
    assert lab.sh("sudo modprobe br_netfilter").ok
    assert lab.sh("sudo modprobe vxlan").ok
    missing = lab.sh("sudo modprobe dummy", check=False)
    assert missing.exit_code == 1 and "on the machine itself run: sudo modprobe dummy" in missing.stderr


def test_vxlan_device_can_be_made(two_containers):
    lab = two_containers
    lab.sh("ip link add vxlan42 type vxlan id 42 dstport 4789 remote 10.0.0.3 dev eth0", ns="c1")
    assert "vxlan id 42" in lab.sh("ip -d link show vxlan42", ns="c1").stdout


def test_python3_resolves_as_typed(lab):
    assert lab.sh("python3 -c 'print(6 * 7)'").stdout == "42\n"


def test_check_true_raises_with_the_complaint(lab):
    with pytest.raises(CommandFailed, match=r"exited with code 7 in namespace c1: curl: \(7\)"):
        lab.sh("ip netns add c1")
        lab.sh("curl -sS 127.0.0.1:9", ns="c1")
