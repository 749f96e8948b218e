"""Put a lab host in a known state in one call: containers on a bridge, forwarding, NAT,
DNS, servers and published ports — so a notebook can start where an earlier one ended.

The builder writes the same commands a learner would type (`lab.build(..., show=True)`
prints them), and runs them batched: one `ip -batch` for the host and one per container.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model.errors import CommandFailed, LabError
from ..model.world import DNS, UPLINK

IFNAMSIZ = 15                          # Linux's limit on an interface name
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MARK = "#lablib-step"                   # written to stderr before each step of a batched build

if TYPE_CHECKING:
    from .handle import Lab


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

    def steps(self) -> list[tuple[str, list[str]]]:
        """(how it runs, its commands) in order: the `ip -batch` of each namespace, then each shell line."""
        return [("ip", self.host_ip), *[(f"ip -n {shlex.quote(name)}", commands)
                                        for name, commands in self.container_ip.items()],
                *[("", [line]) for line in self.shell]]

    def batched(self) -> str:
        """The same plan as a script that runs fast: one `ip -batch` per namespace. Each
        step first writes a mark to stderr, so that a failure names its command."""
        parts = ["set -e", *self.settle()]
        for index, (runner, commands) in enumerate(self.steps()):
            parts.append(f"echo '{MARK} {index}' >&2")
            parts.append(_heredoc(f"{runner} -batch -", commands) if runner else commands[0])
        return "\n".join(parts)

    def settle(self) -> list[str]:
        """Wait (bounded) while a namespace deleted just before (`ip netns del c1`) still
        has its veth on the host: Linux removes it a moment later, not at once."""
        return [f"for i in $(seq 100); do [ -e /run/netns/{name} ] || ! ip link show {veth_name(name)} >/dev/null 2>&1 "
                f"|| {{ sleep 0.02; continue; }}; break; done" for name in self.container_ip]

    def failure(self, stderr: str) -> str:
        """One line for a failed batched build: the command that failed, and why."""
        steps = self.steps()
        index, complaints = None, []
        for line in stderr.splitlines():
            if line.startswith(MARK):
                index, complaints = int(line.split()[1]), []
            elif line.strip():
                complaints.append(line.strip())
        if index is None:
            return complaints[-1] if complaints else "it failed before its first step"
        runner, commands = steps[index]
        command = commands[0]
        failed_line = next((c for c in complaints if c.startswith("Command failed -:")), None)
        if failed_line:
            number = int(failed_line.rsplit(":", 1)[1])
            command = commands[number - 1] if 0 < number <= len(commands) else command
        typed = command
        if runner.startswith("ip -n "):
            typed = f"ip netns exec {runner.split()[2]} ip {command}"
        elif runner:
            typed = f"ip {command}"
        cause = next((c for c in complaints if not c.startswith("Command failed")), "no message")
        hint = ""
        if "File exists" in cause:
            hint = "; it exists already: build other names, delete it first, or lab.reset() for a fresh lab host"
        return f"`{typed}` failed: {cause}{hint}"


def docker_mac(address: str) -> str:
    """The MAC Docker gives an interface: 02:42 and then the four bytes of its IPv4 address
    (172.17.0.2 -> 02:42:ac:11:00:02). Fixed MACs keep ARP caches right when a bridge's
    ports change (a bridge otherwise takes the lowest port MAC, and that moves)."""
    return "02:42:" + ":".join(f"{int(part):02x}" for part in address.split("."))


def _heredoc(command: str, lines: list[str]) -> str:
    return f"{command} <<'EOF'\n" + "\n".join(lines) + "\nEOF"


def container_names(containers: int | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(containers, bool) or not isinstance(containers, (int, list, tuple)):
        raise LabError(f"build() takes a number of containers or a list of names, not {containers!r}")
    if isinstance(containers, int):
        if containers < 1:
            raise LabError(f"build() needs at least one container, not {containers}")
        return [f"c{i}" for i in range(1, containers + 1)]
    names = list(containers)
    for name in names:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise LabError(f"container name {name!r} is not a plain name (letters, digits, - _ .)")
        if len(name) > IFNAMSIZ:
            raise LabError(f"container name '{name}' is too long: build() names its interfaces after it, and "
                           f"Linux allows {IFNAMSIZ} characters; use at most {IFNAMSIZ}")
    if len(set(names)) != len(names):
        raise LabError(f"container names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    by_veth: dict[str, str] = {}
    for name in names:
        other = by_veth.setdefault(veth_name(name), name)
        if other != name:
            raise LabError(f"containers '{other}' and '{name}' would both get the interface {veth_name(name)} "
                           f"(Linux cuts interface names at {IFNAMSIZ} characters); make their first "
                           f"{IFNAMSIZ - len('veth-')} characters differ")
    return names


def veth_name(container: str) -> str:
    """The host-side end of a container's veth pair, as Docker-like tutorials name it."""
    return f"veth-{container}"[:IFNAMSIZ]


def check_bridge(bridge: str) -> None:
    if not isinstance(bridge, str) or not NAME.fullmatch(bridge) or len(bridge) > IFNAMSIZ:
        raise LabError(f"bridge name {bridge!r} is not an interface name (at most {IFNAMSIZ} letters, digits, - _ .)")


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
            raise LabError(f"subnet {subnet} has no room for {len(containers)} containers; "
                           "give build() a larger one, e.g. subnet='10.0.0.0/16'") from None
        network.containers[name] = address
        veth = veth_name(name)
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
            raise LabError(f"cannot publish port {host_port} to '{name}': it is not one of the containers")
        target = f"{network.containers[name]}:{port}"
        steps.shell += [
            f"iptables -t nat -A PREROUTING -p tcp --dport {host_port} -m addrtype --dst-type LOCAL -j DNAT --to-destination {target}",
            f"iptables -t nat -A OUTPUT -p tcp --dport {host_port} -m addrtype --dst-type LOCAL -j DNAT --to-destination {target}",
            f"iptables -A FORWARD -p tcp -d {network.containers[name]} --dport {port} -j ACCEPT",
        ]
        network.published[host_port] = (name, port)
    return steps, network


def build(lab: Lab, containers: int | list[str] | tuple[str, ...] = ("c1", "c2"), *, bridge: str = "br0",
          subnet: str = "10.0.0.0/24", forward: bool | str = False, nat: bool = False, dns: bool = False,
          servers: dict[str, int] | None = None, publish: dict[int, tuple[str, int]] | None = None,
          show: bool = False) -> Network:
    """Build containers on a bridge in `lab`, with real commands; see Lab.build."""
    names = container_names(containers)
    check_bridge(bridge)
    try:
        network_range = ipaddress.ip_network(subnet)
    except (TypeError, ValueError) as error:
        raise LabError(f"subnet {subnet!r} is not a network like '10.0.0.0/24' ({error})") from None
    steps, network = plan(names, bridge, str(network_range), forward, nat, dns, publish or {})
    network.script = steps.readable()
    if show:
        print(network.script)
    try:
        lab.sh(steps.batched(), timeout=max(30.0, len(names) * 0.1))
    except CommandFailed as failed:
        raise CommandFailed(f"build() stopped: {steps.failure(failed.result.stderr)}", failed.result) from None
    for name, port in (servers or {}).items():
        if name not in network.containers:
            raise LabError(f"cannot start a server in '{name}': it is not one of the containers")
        network.servers[name] = lab.spawn(f"python3 -m http.server {port}", ns=name,
                                          name=f"web server in {name}", ready_port=port)
        if show:
            print(f"ip netns exec {name} python3 -m http.server {port} &")
    return network
