"""Several hosts in one lab: each a network namespace acting as a machine of its own, with
its own docker0, its containers, and an uplink `eth0` on a shared LAN (the underlay).

    c1 ─┐                                                              ┌─ c3
        ├ docker0  host1  eth0 10.168.0.2 ─┐         ┌─ 10.168.0.3 eth0  host2  docker0 ┤
    c2 ─┘                                  lan0 (lab host) 10.168.0.1                  └─ c4
                                                    │ eth0 → the simulated internet

The LAN's addresses are seed 000's (its second host is 10.168.0.3); the lab host plays the
LAN's switch (bridge `lan0`) and router (10.168.0.1, NAT to its uplink). Containers are
named across the cluster as seed 000 numbers them ("Container 1 on Node 1, Container 3 on
Node 2"): c1, c2 on host1, c3, c4 on host2. Each is a namespace of its own whose `eth0`
is one end of a veth pair; the other end (`veth-c3`) is a port of its host's bridge — so
the learner reaches a container with `ip netns exec c3 ...` and its host with
`ip netns exec host2 ...`, exactly as those commands are typed on one machine.
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from ..model.world import UPLINK
from .builder import Plan, docker_mac

LAN = "10.168.0.0/24"          # the hosts' own network (seed 000: 10.168.0.3 is the other host)
LAN_BRIDGE = "lan0"
VXLAN_PORT = 4789              # IANA's port for VXLAN (Linux's own default is 8472)
VXLAN_OVERHEAD = 50            # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


@dataclass
class Host:
    """One host of the cluster: its address on the LAN, its bridge and its containers."""
    name: str
    address: str                                    # on the LAN, its eth0
    bridge: str
    subnet: str
    gateway: str | None                             # the bridge's address, if it has one
    containers: dict[str, str] = field(default_factory=dict)   # name -> address

    def __repr__(self) -> str:
        members = ", ".join(f"{name} {address}" for name, address in self.containers.items())
        return f"<Host {self.name} {self.address}: {self.bridge} {self.subnet}: {members}>"


@dataclass
class Cluster:
    """What lab.build_hosts() made: the hosts on their LAN, and where each container lives."""
    lan: str
    router: str
    hosts: dict[str, Host] = field(default_factory=dict)
    vxlan: int | None = None
    script: str = ""

    def host_of(self, container: str) -> Host:
        """The host a container lives on."""
        for host in self.hosts.values():
            if container in host.containers:
                return host
        raise KeyError(f"no container '{container}' in this cluster; have: {', '.join(self.containers)}")

    @property
    def containers(self) -> dict[str, str]:
        """Every container of every host: name -> address."""
        return {name: address for host in self.hosts.values() for name, address in host.containers.items()}

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __repr__(self) -> str:
        lines = [f"<Cluster on {self.lan}" + (f", VXLAN {self.vxlan}" if self.vxlan is not None else "") + ":"]
        lines += [f"  {host!r}" for host in self.hosts.values()]
        return "\n".join(lines) + ">"


def _subnets(subnet: str | list[str] | tuple[str, ...], count: int) -> list[str]:
    if isinstance(subnet, str):
        return [subnet] * count
    if len(subnet) != count:
        raise ValueError(f"give one subnet for each of the {count} hosts, or one for all (got {len(subnet)})")
    return list(subnet)


def plan_hosts(count: int, containers: int, subnet: str | list[str] | tuple[str, ...], bridge: str,
               span: bool, nat: bool, vxlan: int | None, mtu: int | None) -> tuple[Plan, Cluster]:
    """The commands that build `count` hosts with `containers` containers each."""
    if count < 1 or containers < 0:
        raise ValueError("build_hosts needs at least one host, and zero or more containers each")
    subnets = _subnets(subnet, count)
    if (span or vxlan is not None) and len(set(subnets)) != 1:
        raise ValueError("containers spanning the hosts (span=True, vxlan=...) share one subnet: give one")
    lan = ipaddress.ip_network(LAN)
    lan_hosts = lan.hosts()
    router = str(next(lan_hosts))
    cluster = Cluster(str(lan), router, vxlan=vxlan)
    steps = Plan()
    steps.host_ip += [f"link add {LAN_BRIDGE} type bridge", f"link set {LAN_BRIDGE} up",
                      f"addr add {router}/{lan.prefixlen} dev {LAN_BRIDGE}"]
    spanning = ipaddress.ip_network(subnets[0]).hosts() if span or vxlan is not None else None
    if spanning is not None:
        next(spanning)   # .1 is left for a gateway, as Docker leaves it
    number = 0
    for index in range(1, count + 1):
        name, address = f"host{index}", str(next(lan_hosts))
        network = ipaddress.ip_network(subnets[index - 1])
        addresses = spanning if spanning is not None else network.hosts()
        gateway = None if spanning is not None else str(next(addresses))
        host = cluster.hosts[name] = Host(name, address, bridge, str(network), gateway)
        steps.host_ip += [f"netns add {name}", f"link add veth-{name} type veth peer name {UPLINK} netns {name}",
                          f"link set veth-{name} master {LAN_BRIDGE} up"]
        commands = steps.container_ip[name] = [
            "link set lo up", f"link set {UPLINK} up", f"addr add {address}/{lan.prefixlen} dev {UPLINK}",
            f"route add default via {router}",
            f"link add {bridge} type bridge"]
        if gateway:   # Docker's fixed MAC for the bridge keeps ARP right when ports change
            commands += [f"link set {bridge} address {docker_mac(gateway)}"]
        commands += [f"link set {bridge} up"]
        if gateway:
            commands += [f"addr add {gateway}/{network.prefixlen} dev {bridge}"]
        if vxlan is not None:
            commands += [f"link add vxlan0 type vxlan id {vxlan} dstport {VXLAN_PORT} dev {UPLINK} local {address}",
                         f"link set vxlan0 master {bridge} up"]
        steps.host_ip += [f"netns add c{number + k}" for k in range(1, containers + 1)]
        for _ in range(containers):
            number += 1
            container = f"c{number}"
            try:
                container_address = str(next(addresses))
            except StopIteration:
                raise ValueError(f"subnet {network} has no room for {containers} containers per host") from None
            host.containers[container] = container_address
            commands += [f"link add veth-{container} type veth peer name eth0 netns {container}",
                         f"link set veth-{container} master {bridge} up"]
            inside = ["link set lo up", f"link set eth0 address {docker_mac(container_address)}"]
            if mtu is not None or vxlan is not None:
                inside.append(f"link set eth0 mtu {mtu or 1500 - VXLAN_OVERHEAD}")
            inside += ["link set eth0 up", f"addr add {container_address}/{network.prefixlen} dev eth0"]
            if gateway:
                inside.append(f"route add default via {gateway}")
            steps.container_ip[container] = inside
    # The lab host routes the LAN to the internet (NAT on its uplink), as a data centre's router would.
    steps.shell += ["sysctl -qw net.ipv4.ip_forward=1",
                    f"iptables -t nat -A POSTROUTING -s {lan} -o {UPLINK} -j MASQUERADE"]
    for name, host in cluster.hosts.items():
        run = f"ip netns exec {name} "
        # Docker's FORWARD chain: policy DROP, and accepts for its bridge's traffic.
        steps.shell += [f"{run}sysctl -qw net.ipv4.ip_forward=1",
                        f"{run}iptables -P FORWARD DROP",
                        f"{run}iptables -A FORWARD -i {bridge} -o {UPLINK} -j ACCEPT",
                        f"{run}iptables -A FORWARD -i {UPLINK} -o {bridge} -j ACCEPT",
                        f"{run}iptables -A FORWARD -i {bridge} -o {bridge} -j ACCEPT"]
        if nat and host.gateway:
            steps.shell.append(f"{run}iptables -t nat -A POSTROUTING -s {host.subnet} ! -o {bridge} -j MASQUERADE")
        if vxlan is not None:
            for other in cluster.hosts.values():
                if other is not host:
                    steps.shell.append(f"{run}bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst {other.address}")
    return steps, cluster


def _heredoc(command: str, lines: list[str]) -> str:
    return f"{command} <<'EOF'\n" + "\n".join(lines) + "\nEOF"


def _ipv6_off(name: str) -> str:
    return f"ip netns exec {shlex.quote(name)} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 " \
        "net.ipv6.conf.default.disable_ipv6=1"


def readable(steps: Plan) -> str:
    """The plan as a learner would type it, one command a line."""
    lines = [f"ip {c}" for c in steps.host_ip if c.startswith("netns add")]
    lines += [_ipv6_off(name) for name in steps.container_ip]
    lines += [f"ip {c}" for c in steps.host_ip if not c.startswith("netns add")]
    for name, commands in steps.container_ip.items():
        lines += [f"ip netns exec {name} ip {command}" for command in commands]
    return "\n".join(lines + steps.shell)


def script(steps: Plan) -> str:
    """The plan as one fast script: namespaces first, then IPv6 off in each (as Docker does
    in containers without --ipv6; here the hosts too, so no IPv6 chatter crosses the
    tunnel), then one `ip -batch` per namespace, then the rest."""
    quiet = [_ipv6_off(name) for name in steps.container_ip]
    parts = ["set -e", _heredoc("ip -batch -", [c for c in steps.host_ip if c.startswith("netns add")]), *quiet,
             _heredoc("ip -batch -", [c for c in steps.host_ip if not c.startswith("netns add")])]
    parts += [_heredoc(f"ip -n {shlex.quote(name)} -batch -", commands)
              for name, commands in steps.container_ip.items()]
    return "\n".join(parts + steps.shell)


def build_hosts(lab, count: int = 2, *, containers: int = 2, subnet: str | list[str] | tuple[str, ...] = "172.17.0.0/16",
                bridge: str = "docker0", span: bool = False, nat: bool = True, vxlan: int | None = None,
                mtu: int | None = None, show: bool = False) -> Cluster:
    """Build the hosts in `lab` with real commands; see Lab.build_hosts."""
    steps, cluster = plan_hosts(count, containers, subnet, bridge, span, nat, vxlan, mtu)
    cluster.script = readable(steps)
    if show:
        print(cluster.script)
    lab.sh(script(steps), timeout=30.0)
    return cluster
