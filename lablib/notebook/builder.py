"""Put a lab host in a known state in one call: containers on a bridge, forwarding, NAT,
DNS, servers and published ports — so a notebook can start where an earlier one ended.

The builder writes the same commands a learner would type (`lab.build(..., show=True)`
prints them), and runs them batched: one `ip -batch` for the host and one per container.
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from ..model.world import DNS, UPLINK


@dataclass
class Network:
    """What lab.build() made: a bridge with its gateway address, and the containers on it."""
    bridge: str
    subnet: str
    gateway: str
    containers: dict[str, str] = field(default_factory=dict)   # name -> address
    servers: dict[str, object] = field(default_factory=dict)   # name -> BackgroundProcess
    published: dict[int, tuple[str, int]] = field(default_factory=dict)
    script: str = ""

    def __repr__(self) -> str:
        members = ", ".join(f"{name} {address}" for name, address in self.containers.items())
        return f"<Network {self.bridge} {self.subnet} gateway {self.gateway}: {members}>"


@dataclass
class Plan:
    """The commands that build a network, by where they run."""
    host_ip: list[str] = field(default_factory=list)                 # `ip` commands in the lab host
    container_ip: dict[str, list[str]] = field(default_factory=dict)  # `ip` commands per container
    shell: list[str] = field(default_factory=list)                    # sysctl, iptables, files

    def readable(self) -> str:
        """The plan as a learner would type it, one command a line."""
        lines = [f"ip {command}" for command in self.host_ip]
        for name, commands in self.container_ip.items():
            lines += [f"ip netns exec {name} ip {command}" for command in commands]
        return "\n".join(lines + self.shell)

    def batched(self) -> str:
        """The same plan as a script that runs fast: one `ip -batch` per namespace."""
        parts = ["set -e", _heredoc("ip -batch -", self.host_ip)]
        parts += [_heredoc(f"ip -n {shlex.quote(name)} -batch -", commands)
                  for name, commands in self.container_ip.items()]
        return "\n".join(parts + self.shell)


def docker_mac(address: str) -> str:
    """The MAC Docker gives an interface: 02:42 and then the four bytes of its IPv4 address
    (172.17.0.2 -> 02:42:ac:11:00:02). Fixed MACs keep ARP caches right when a bridge's
    ports change (a bridge otherwise takes the lowest port MAC, and that moves)."""
    return "02:42:" + ":".join(f"{int(part):02x}" for part in address.split("."))


def _heredoc(command: str, lines: list[str]) -> str:
    return f"{command} <<'EOF'\n" + "\n".join(lines) + "\nEOF"


def container_names(containers: int | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(containers, int):
        return [f"c{i}" for i in range(1, containers + 1)]
    return list(containers)


def plan(containers: list[str], bridge: str, subnet: str, forward: bool | str, nat: bool, dns: bool,
         publish: dict[int, tuple[str, int]]) -> tuple[Plan, Network]:
    network_range = ipaddress.ip_network(subnet)
    hosts = network_range.hosts()
    gateway = str(next(hosts))
    network = Network(bridge, str(network_range), gateway)
    steps = Plan()
    prefix = network_range.prefixlen
    steps.host_ip += [f"link add {bridge} type bridge", f"link set {bridge} address {docker_mac(gateway)}",
                      f"link set {bridge} up", f"addr add {gateway}/{prefix} dev {bridge}"]
    for name in containers:
        try:
            address = str(next(hosts))
        except StopIteration:
            raise ValueError(f"subnet {subnet} has no room for {len(containers)} containers") from None
        network.containers[name] = address
        veth = f"veth-{name}"[:15]
        steps.host_ip += [f"netns add {name}",
                          f"link add {veth} type veth peer name eth0 netns {name}",
                          f"link set {veth} master {bridge} up"]
        steps.container_ip[name] = ["link set lo up", f"link set eth0 address {docker_mac(address)}",
                                    "link set eth0 up",
                                    f"addr add {address}/{prefix} dev eth0",
                                    f"route add default via {gateway}"]
    if forward == "docker":
        # As Docker leaves FORWARD when it had to switch ip_forward on: policy DROP, replies
        # back in by conntrack, the bridge's own traffic out and within.
        steps.shell += ["sysctl -qw net.ipv4.ip_forward=1", "iptables -P FORWARD DROP",
                        f"iptables -A FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                        f"iptables -A FORWARD -i {bridge} ! -o {bridge} -j ACCEPT",
                        f"iptables -A FORWARD -i {bridge} -o {bridge} -j ACCEPT"]
    elif forward or nat or publish:
        # Where notebook 04 ends: forwarding on, FORWARD's policy DROP (as Docker sets it when
        # it switches ip_forward on), and accepts between the bridge and the uplink.
        steps.shell += ["sysctl -qw net.ipv4.ip_forward=1",
                        "iptables -P FORWARD DROP",
                        f"iptables -A FORWARD -i {bridge} -o {UPLINK} -j ACCEPT",
                        f"iptables -A FORWARD -i {UPLINK} -o {bridge} -j ACCEPT",
                        f"iptables -A FORWARD -i {bridge} -o {bridge} -j ACCEPT"]
    if nat:
        # Docker's own rule for docker0, with this network's subnet and bridge.
        steps.shell.append(f"iptables -t nat -A POSTROUTING -s {network.subnet} ! -o {bridge} -j MASQUERADE")
    if dns:
        for name in containers:
            steps.shell += [f"mkdir -p /etc/netns/{name}",
                            f"echo 'nameserver {DNS.address}' > /etc/netns/{name}/resolv.conf"]
    for host_port, (name, port) in publish.items():
        if name not in network.containers:
            raise ValueError(f"cannot publish port {host_port} to '{name}': it is not one of the containers")
        target = f"{network.containers[name]}:{port}"
        steps.shell += [
            f"iptables -t nat -A PREROUTING -p tcp --dport {host_port} -m addrtype --dst-type LOCAL -j DNAT --to-destination {target}",
            f"iptables -t nat -A OUTPUT -p tcp --dport {host_port} -m addrtype --dst-type LOCAL -j DNAT --to-destination {target}",
            f"iptables -A FORWARD -p tcp -d {network.containers[name]} --dport {port} -j ACCEPT",
        ]
        network.published[host_port] = (name, port)
    return steps, network


def build(lab, containers: int | list[str] | tuple[str, ...] = ("c1", "c2"), *, bridge: str = "br0",
          subnet: str = "10.0.0.0/24", forward: bool | str = False, nat: bool = False, dns: bool = False,
          servers: dict[str, int] | None = None, publish: dict[int, tuple[str, int]] | None = None,
          show: bool = False) -> Network:
    """Build containers on a bridge in `lab`, with real commands; see Lab.build."""
    names = container_names(containers)
    steps, network = plan(names, bridge, subnet, forward, nat, dns, publish or {})
    network.script = steps.readable()
    if show:
        print(network.script)
    lab.sh(steps.batched(), timeout=max(30.0, len(names) * 0.1))
    for name, port in (servers or {}).items():
        if name not in network.containers:
            raise ValueError(f"cannot start a server in '{name}': it is not one of the containers")
        network.servers[name] = lab.spawn(f"python3 -m http.server {port}", ns=name,
                                          name=f"web server in {name}", ready_port=port)
        if show:
            print(f"ip netns exec {name} python3 -m http.server {port} &")
    return network
