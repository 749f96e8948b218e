"""Find the fault: plant one fault in a working network, chosen per learner, and check
that the learner fixed *that* fault — not worked around it.

    fault = lab.plant_fault("05-f1", among=["default_route", "ip_forward", "masquerade"],
                            probe=expect.reaches("c1", "http://198.51.100.10/"))
    # shows only the symptom; the learner diagnoses with ip, ss, iptables -L -v, tcpdump ...
    fault.check()        # ✅ when the probe works again, the fault is undone, and nothing
                         #    else was flattened on the way (rules flushed, policy ACCEPT,
                         #    namespaces rebuilt under other names)

Which fault a learner gets is fixed by a seed: by default the user name and the
exercise, so an instructor reproduces it with `seed="alice:05-f1"` (or the environment
variable LABLIB_FAULT_SEED); LABLIB_FAULT=kind forces one kind (for tests and demos).
The fault's kind appears only in the progress file and, once solved, in the result.
"""
from __future__ import annotations

import getpass
import hashlib
import ipaddress
import os
import re
import shlex

from ..model.errors import LabError
from ..model.state import HOST, Snapshot
from .checks import (
    CheckResult,
    Verdict,
    fast,
    neighbour,
    reaches,
    resolves,
    route,
    sysctl,
)

WRONG_MAC = "02:00:5e:00:00:66"          # a unicast, locally administered MAC nobody has
WRONG_NAMESERVER = "198.51.100.54"       # in the simulated internet, where nothing answers DNS


class Context:
    """What a fault is planted relative to: the probe's namespace, its gateway, and the
    lab host's side of its cable — read from the kernel, not declared."""

    def __init__(self, lab, probe: reaches, snapshot: Snapshot):
        self.probe, self.ns = probe, probe.src
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            raise LabError(f"namespace {self.ns} does not exist: build the network before planting a fault")
        default = next((r for r in namespace.routes if r.dst == "default"), None)
        self.gateway = default.gateway if default else None
        self.dev = default.dev if default else None
        link = namespace.link(self.dev) if self.dev else None
        self.address = next((a for a in (link.notable_addresses if link else []) if ":" not in a), None)
        peer = snapshot.link(*link.peer) if link and link.peer else None
        self.host_port = peer.name if peer else None
        self.bridge = peer.master if peer else None
        self.uplink = "eth0"


class Fault:
    """One kind of fault: how to plant it, and what 'fixed' means for it."""
    kind = ""
    symptom_needs = ""      # what kind of probe it breaks (for the author's error message)

    def __init__(self, lab, context: Context):
        self.lab, self.c = lab, context
        self.saved: dict = {}

    def plant(self) -> None:
        raise NotImplementedError

    def fixed(self, snapshot: Snapshot) -> list[Verdict]:
        """Verdicts that the planted fault itself is undone."""
        raise NotImplementedError

    def repair(self) -> list[str]:
        """The commands that undo this fault (for the hidden solution cell)."""
        raise NotImplementedError

    def allowed_removals(self) -> set[tuple[str, str, str, str]]:
        """Rules the fix may delete (the planted one)."""
        return set()

    def allowed_remade(self) -> set[tuple[str, str]]:
        """Links (ns, name) the fix may delete and make again (what cannot be changed in place)."""
        return set()

    def allowed_mtu(self) -> set[tuple[str, str]]:
        """Links (ns, name) whose MTU the fix may change (the planted one, and a bridge
        whose MTU follows its ports)."""
        return set()

    def hints(self) -> list[str]:
        """Three hints, each giving more away: where to look, which layer, the fix."""
        return ["Follow the symptom's packet hop by hop: the container first (ip -br addr, ip route), then "
                "its bridge, then the host's rules (iptables -L -v -n) and its uplink.",
                "Compare what you see with a network that works (notebooks 03 to 07).",
                "The fix: " + " && ".join(self.repair())]

    def sh(self, command: str, ns: str | None = None) -> str:
        return self.lab.sh(command, ns=None if ns in (None, HOST) else ns).stdout

    def _in(self, ns: str) -> str:
        return "" if ns in (None, HOST) else f"ip netns exec {ns} "


class LoDown(Fault):
    kind, symptom_needs = "lo_down", "a probe to the namespace's own or loopback address"

    def plant(self):
        self.sh("ip link set lo down", self.c.ns)

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.c.ns} ip link set lo up"]

    def fixed(self, snapshot):
        from .checks import interface
        return [interface(self.c.ns, "lo", up=True).judge(self.lab, snapshot)]


    def hints(self):
        return [f"The request never leaves {self.c.ns}: look at {self.c.ns}'s own interfaces "
                f"(nsenter -n -t PID ip -br link, or ip netns exec {self.c.ns} ip -br link).",
                "Layer 2 inside the container: the loopback interface, which carries 127.0.0.1 and the "
                "container's traffic to itself.",
                "The fix: " + " && ".join(self.repair())]

class DefaultRoute(Fault):
    kind, symptom_needs = "default_route", "a probe that leaves the namespace's subnet"

    def plant(self):
        network = ipaddress.ip_interface(self.c.address).network
        wrong = next(str(h) for h in reversed(list(network.hosts())[-20:]) if str(h) != self.c.gateway)
        self.saved["wrong"] = wrong
        self.sh(f"ip route replace default via {wrong} dev {self.c.dev}", self.c.ns)

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.c.ns} ip route replace default via {self.c.gateway} dev {self.c.dev}"]

    def fixed(self, snapshot):
        return [route(self.c.ns, "default", via=self.c.gateway).judge(self.lab, snapshot)]


    def hints(self):
        return [f"Start inside {self.c.ns}: ip route, and does a ping to {self.c.gateway} (the bridge) work? "
                f"tcpdump -i {self.c.bridge} -n: where do its packets go?",
                f"Layer 3 in the container: its routing table sends traffic that leaves the subnet to a "
                f"gateway — is that {self.c.gateway}, the bridge's address?",
                "The fix: " + " && ".join(self.repair())]

class IpForward(Fault):
    kind, symptom_needs = "ip_forward", "a probe routed by the lab host"

    def plant(self):
        self.sh("sysctl -qw net.ipv4.ip_forward=0")

    def repair(self) -> list[str]:
        return ["sysctl -w net.ipv4.ip_forward=1"]

    def fixed(self, snapshot):
        return [sysctl("net.ipv4.ip_forward", "1").judge(self.lab, snapshot)]


    def hints(self):
        return [f"Container ↔ bridge works (ping {self.c.gateway} from {self.c.ns}); so look at the host, "
                f"between {self.c.bridge} and eth0: tcpdump -i {self.c.bridge} -n icmp, then tcpdump -i eth0 -n icmp.",
                "Layer 3 on the host: the packet reaches the host and is not routed on — the host "
                "does not act as a router (cat /proc/sys/net/ipv4/ip_forward).",
                "The fix: " + " && ".join(self.repair())]

class Masquerade(Fault):
    kind, symptom_needs = "masquerade", "a probe to the outside world, with a MASQUERADE for the subnet"

    def plant(self):
        lines = self.sh("iptables -t nat -S POSTROUTING").splitlines()
        mine = [line for line in lines if "MASQUERADE" in line and self._covers(line)]
        if not mine:
            raise LabError(f"no MASQUERADE rule covers {self.c.address}: there is no masquerade to remove")
        self.saved["rules"] = mine
        for line in mine:
            self.sh(f"iptables -t nat {line.replace('-A ', '-D ', 1)}")

    def _covers(self, line: str) -> bool:
        from ..views.rules import parse_rule
        rule = parse_rule(line)
        source = rule.matches.get("source")
        if source is None:
            return True
        inside = ipaddress.ip_interface(self.c.address).ip in source.value
        return inside != source.negated

    def repair(self) -> list[str]:
        return [f"iptables -t nat {line}" for line in self.saved["rules"]]

    def fixed(self, snapshot):
        from ..views.rules import parse_rule
        host = snapshot.namespaces[HOST]
        rules = [r.rule for r in host.rules if r.table == "nat" and r.chain == "POSTROUTING"
                 and r.source == "iptables" and not r.rule.startswith("policy")]
        for text in rules:
            parsed = parse_rule(text)
            out = parsed.matches.get("out")
            leaves_uplink = out is None or (out.value == self.c.uplink) != out.negated
            if parsed.target in ("MASQUERADE", "SNAT") and self._covers(text) and leaves_uplink:
                if parsed.matches.get("source") is None and out is None:
                    return [Verdict(False, "a MASQUERADE for the containers' subnet, leaving by eth0",
                                    f"`{text}` masquerades everything, on every interface (even between "
                                    "containers): limit it by source or out-interface, as Docker does")]
                return [Verdict(True, "a MASQUERADE for the containers' subnet, leaving by eth0")]
        return [Verdict(False, "a MASQUERADE for the containers' subnet, leaving by eth0",
                        "no nat POSTROUTING rule masquerades packets from the containers' subnet that leave by eth0; "
                        "compare with: iptables -t nat -S POSTROUTING")]


    def hints(self):
        return ["The packet does leave: tcpdump -i eth0 -n — which source address does it carry out? "
                "Could the far end answer that address?",
                "Layer 3, the host's nat table: the source address of packets leaving eth0 "
                "(iptables -t nat -L POSTROUTING -v -n).",
                "The fix: " + " && ".join(self.repair())]

class ForwardDrop(Fault):
    kind, symptom_needs = "forward_drop", "a probe routed by the lab host's FORWARD chain"

    def plant(self):
        address = ipaddress.ip_interface(self.c.address).ip
        self.saved["rule"] = f"-A FORWARD -s {address}/32 -j DROP"
        self.sh(f"iptables -I FORWARD 1 -s {address} -j DROP")

    def allowed_removals(self):
        return {(HOST, "filter", "FORWARD", self.saved["rule"])}

    def repair(self) -> list[str]:
        return [f"iptables {self.saved['rule'].replace('-A ', '-D ', 1)}"]

    def fixed(self, snapshot):
        present = any(r.rule == self.saved["rule"] for r in snapshot.namespaces[HOST].rules
                      if r.table == "filter" and r.chain == "FORWARD")
        return [Verdict(not present, f"no FORWARD rule drops {self.c.ns}'s packets",
                        "a FORWARD rule still drops them: find it with iptables -L FORWARD -v -n --line-numbers")]


    def hints(self):
        return [f"tcpdump -i {self.c.bridge} -n shows the request reaching the bridge, tcpdump -i eth0 -n "
                "shows nothing leaving: something between them on the host decides against it.",
                "The host's filter table, FORWARD chain: iptables -L FORWARD -v -n --line-numbers — which "
                "counter moves when you retry?",
                "The fix: " + " && ".join(self.repair())]

class ForwardAccepts(Fault):
    """FORWARD's policy DROP with the bridge's accepts gone (as when a firewall script
    flushes FORWARD, or Docker's ip_forward switch sets DROP on a host that had no rules):
    nothing from or to the containers is forwarded."""
    kind, symptom_needs = "forward_accepts", "a probe routed by the lab host, with FORWARD policy DROP and accepts for the bridge"

    def plant(self):
        policy = self.sh("iptables -S FORWARD").splitlines()
        if "-P FORWARD DROP" not in policy:
            raise LabError(f"fault {self.kind} needs {self.symptom_needs}")
        bridge = self.c.bridge
        mine = [line for line in policy if line.startswith("-A FORWARD") and "-j ACCEPT" in line
                and (f"-i {bridge} " in line or f"-o {bridge} " in line)]
        if not mine:
            raise LabError(f"fault {self.kind} needs {self.symptom_needs}")
        self.saved["rules"] = mine
        for line in mine:
            self.sh(f"iptables {line.replace('-A ', '-D ', 1)}")

    def repair(self) -> list[str]:
        return [f"iptables {line}" for line in self.saved["rules"]]

    def fixed(self, snapshot):
        from ..views.rules import parse_rule
        rules = [parse_rule(r.rule) for r in snapshot.namespaces[HOST].rules
                 if r.table == "filter" and r.chain == "FORWARD" and r.source == "iptables"
                 and not r.rule.startswith("policy")]
        accepts = [r for r in rules if r.target == "ACCEPT"]

        def names(rule, key):
            match = rule.matches.get(key)
            return match is not None and match.value == self.c.bridge and not match.negated
        out = any(names(r, "in") for r in accepts)
        back = any(names(r, "out") for r in accepts)
        return [Verdict(out and back, f"FORWARD accepts what leaves {self.c.bridge} and what comes back to it "
                        "(the policy stays DROP)",
                        f"FORWARD has no accept {'-i' if not out else '-o'} {self.c.bridge}: "
                        "compare with iptables -S FORWARD on a Docker host (notebook 04)")]

    def hints(self):
        return [f"The request reaches br0 (tcpdump -i {self.c.bridge} -n) and never eth0: look at the host's "
                "FORWARD chain, its policy and counters: iptables -L FORWARD -v -n.",
                "The host's filter table, FORWARD: the policy is DROP, and which rules let the containers' "
                "traffic through?",
                "The fix: " + " && ".join(self.repair())]


class ResolvConf(Fault):
    kind, symptom_needs = "resolv_conf", "a probe by name (http://example.com/)"

    def plant(self):
        path = f"/etc/netns/{self.c.ns}/resolv.conf"
        self.saved["before"] = self.lab.sh(f"cat {path}", check=False).stdout
        self.sh(f"mkdir -p /etc/netns/{self.c.ns} && printf 'nameserver {WRONG_NAMESERVER}\\n' > {path}")

    def repair(self) -> list[str]:
        return [f"printf %s {shlex.quote(self.saved['before'])} > /etc/netns/{self.c.ns}/resolv.conf" if self.saved["before"] else f"rm /etc/netns/{self.c.ns}/resolv.conf"]

    def fixed(self, snapshot):
        name = self.c.probe._address()
        return [resolves(self.c.ns, name, dns=True).judge(self.lab, snapshot)]


    def hints(self):
        return [f"Does it work by address? Try the IP instead of the name from {self.c.ns}; then ask "
                "who answers names: getent hosts / dig, and tcpdump -n port 53.",
                f"Names, not packets: the resolver configuration {self.c.ns} sees "
                f"(/etc/netns/{self.c.ns}/resolv.conf, which ip netns exec mounts over /etc/resolv.conf).",
                "The fix: " + " && ".join(self.repair())]

class StaleArp(Fault):
    kind, symptom_needs = "arp", "a probe through the namespace's gateway"

    def plant(self):
        self.sh(f"ip neigh replace {self.c.gateway} lladdr {WRONG_MAC} dev {self.c.dev} nud permanent", self.c.ns)

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.c.ns} ip neigh del {self.c.gateway} dev {self.c.dev}"]

    def fixed(self, snapshot):
        return [neighbour(self.c.ns, self.c.gateway).judge(self.lab, snapshot)]


    def hints(self):
        return [f"tcpdump -i {self.c.bridge} -n -e: which destination MAC do {self.c.ns}'s packets carry?",
                f"Layer 2 in the container: its neighbour table (ip neigh) maps {self.c.gateway} to a MAC.",
                "The fix: " + " && ".join(self.repair())]

class Hairpin(Fault):
    kind, symptom_needs = "hairpin", "a container reaching its own published port"

    def plant(self):
        self.sh(f"bridge link set dev {self.c.host_port} hairpin off")

    def repair(self) -> list[str]:
        return [f"bridge link set dev {self.c.host_port} hairpin on"]

    def fixed(self, snapshot):
        text = self.lab.sh(f"bridge -d link show dev {self.c.host_port}", check=False).stdout
        on = re.search(r"\bhairpin on\b", text) is not None
        return [Verdict(on, f"hairpin mode is on for {self.c.host_port}",
                        f"{self.c.host_port}'s hairpin mode is off: see bridge -d link show dev {self.c.host_port}")]


    def hints(self):
        return [f"Other clients reach the published port; only {self.c.ns} calling itself through it fails. "
                f"tcpdump -i {self.c.host_port} -n -e: does the DNATed packet go back out the port it came in by?",
                "Layer 2, the bridge: a bridge never sends a frame back out the port it arrived on, unless "
                "that port is in hairpin mode (bridge -d link show).",
                "The fix: " + " && ".join(self.repair())]

def _target(probe) -> tuple[str, int]:
    """The address and TCP port a reaches-probe asks for (http://IP[:PORT]/ or IP:PORT)."""
    from urllib.parse import urlsplit
    target = probe.target if "//" in probe.target else f"tcp://{probe.target}"
    parts = urlsplit(target)
    return parts.hostname, parts.port or 80


def _owner(snapshot: Snapshot, address: str) -> str | None:
    """The namespace holding `address` on one of its links."""
    return next((ns.name for ns in snapshot.namespaces.values()
                 if any(a.split("/")[0] == address for link in ns.links for a in link.addresses)), None)


class LoopbackOnly(Fault):
    """The server listens on 127.0.0.1 only: it runs, `ss -ltn` shows it, and nothing from
    outside its namespace reaches it. The fix rebinds it; a DNAT to 127.0.0.1 is a hack."""
    kind, symptom_needs = "loopback_only", "a probe from another namespace to a server's http://IP:PORT/"

    def plant(self):
        self.address, self.port = _target(self.c.probe)
        self.server = _owner(self.lab.snapshot(kinds={"links"}), self.address)
        if self.server is None or self.server == self.c.ns:
            raise LabError(f"fault {self.kind} needs {self.symptom_needs}")
        self.sh(f"kill $(ss -ltnpH 'sport = :{self.port}' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)", self.server)
        self.lab.spawn(f"python3 -m http.server {self.port} --bind 127.0.0.1", ns=self.server,
                       name=f"{self.server}-web-loopback", ready_port=self.port)

    def repair(self) -> list[str]:
        run = self._in(self.server)
        return [f"{run}sh -c 'kill $(ss -ltnpH sport = :{self.port} | grep -o \"pid=[0-9]*\" | cut -d= -f2)'",
                f"{run}sh -c 'python3 -m http.server {self.port} >/dev/null 2>&1 &'",
                f"for i in $(seq 50); do {run}ss -ltnH 'sport = :{self.port}' | grep -q '0.0.0.0\\|\\*' "
                "&& break; sleep 0.1; done"]

    def listeners(self) -> list[str]:
        lines = self.sh(f"ss -ltnH 'sport = :{self.port}'", self.server).splitlines()
        return [line.split()[3].rsplit(":", 1)[0] for line in lines if len(line.split()) > 3]

    def fixed(self, snapshot):
        bound = self.listeners()
        reachable = [b for b in bound if b in ("0.0.0.0", "*", "[::]", self.address)]
        verdicts = [Verdict(bool(reachable), f"the server in {self.server} listens on {self.address}:{self.port} "
                            "(or on every address)",
                            f"it listens on {', '.join(bound) or 'nothing'} only: restart it bound to 0.0.0.0")]
        nat = [r.rule for ns in (self.server, HOST) for r in snapshot.namespaces[ns].rules
               if r.table == "nat" and ("127.0.0.1" in r.rule or "REDIRECT" in r.rule)]
        localnet = self.sh("sysctl -n net.ipv4.conf.all.route_localnet", self.server).strip()
        verdicts.append(Verdict(not nat and localnet != "1", "no DNAT or REDIRECT to 127.0.0.1 (and route_localnet off)",
                                f"`{nat[0]}` redirects to the loopback address: that hides a server bound to the "
                                "wrong address; delete it and rebind the server" if nat else
                                "route_localnet is 1: set it back to 0 and rebind the server instead"))
        return verdicts

    def hints(self):
        return [f"Is anything listening? Find the server's process (ps, ip netns pids {self.server}), enter its "
                f"network namespace (nsenter -n -t PID) and run ss -ltnp: on which address and port?",
                "Layer 4, the socket: a server bound to 127.0.0.1 accepts only connections made inside its own "
                "namespace; packets to its eth0 address are answered with a reset (tcpdump -i br0 -n port "
                f"{self.port}).",
                "The fix: restart the server bound to every address (or its eth0 address), not a DNAT to "
                "127.0.0.1: " + " && ".join(self.repair()[:2])]


class RpFilter(Fault):
    """Strict reverse-path filtering in the server's namespace, which also has a second link
    (a monitoring link to the host) and a route back to the client through it: requests
    come in by eth0, the kernel would answer by eth1, so strict mode drops the requests.
    The route is part of the design (traffic to the client goes by the monitoring link);
    the fix is loose mode (rp_filter=2), as most distributions set."""
    kind, symptom_needs = "rp_filter", "a probe from one container to another's server on the same bridge"

    def plant(self):
        self.address, self.port = _target(self.c.probe)
        snapshot = self.lab.snapshot(kinds={"links"})
        self.server = _owner(snapshot, self.address)
        if self.server is None or self.server == self.c.ns or self.c.address is None:
            raise LabError(f"fault {self.kind} needs {self.symptom_needs}")
        client = str(ipaddress.ip_interface(self.c.address).ip)
        host_end = f"mon-{self.server}"[:15]
        run = self._in(self.server)
        self.saved.update(client=client, host_end=host_end)
        for command in (f"ip link add {host_end} type veth peer name eth1 netns {self.server}",
                        f"ip addr add 10.0.99.1/30 dev {host_end}", f"ip link set {host_end} up",
                        f"{run}ip addr add 10.0.99.2/30 dev eth1", f"{run}ip link set eth1 up",
                        f"{run}ip route add {client}/32 via 10.0.99.1 dev eth1",
                        f"iptables -I FORWARD -i {host_end} -j ACCEPT",
                        f"{run}sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1"):
            self.sh(command)

    def repair(self) -> list[str]:
        return [f"{self._in(self.server)}sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.eth0.rp_filter=2"]

    def fixed(self, snapshot):
        values = self.sh("sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.eth0.rp_filter", self.server).split()
        effective = max(int(v) for v in values)     # the kernel uses the larger of all and the interface
        routes = [r for r in snapshot.namespaces[self.server].routes
                  if r.dst in (self.saved["client"], f"{self.saved['client']}/32")]
        return [Verdict(effective != 1, f"reverse-path filtering on {self.server}'s eth0 is not strict "
                        "(rp_filter 2, loose, or 0)",
                        f"net.ipv4.conf.all.rp_filter and .eth0.rp_filter are {' and '.join(values)}: the larger, "
                        f"{effective}, is strict"),
                Verdict(bool(routes) and routes[0].dev == "eth1",
                        f"the route to {self.saved['client']} by the monitoring link eth1 is kept",
                        f"the route to {self.saved['client']} via 10.0.99.1 dev eth1 is part of the design: put it "
                        f"back ({self._in(self.server)}ip route add {self.saved['client']}/32 via 10.0.99.1 dev eth1)")]

    def hints(self):
        return [f"tcpdump -i eth0 -n port {self.port} inside {self.server} (nsenter -n -t PID): the SYNs arrive, "
                f"and no answer leaves. Look at {self.server}'s routes back to the client: ip route get "
                f"{self.saved['client']}.",
                "Layer 3, the receiving kernel's reverse-path filter: a packet whose source it would not route "
                "back out the interface it came in by is dropped (nstat -az TcpExtIPReversePathFilter; "
                "sysctl net.ipv4.conf.all.rp_filter).",
                "The fix (keep the route, it is by design): " + " && ".join(self.repair())]


class MtuMismatch(Fault):
    """One veth end with a smaller MTU than the rest of the bridge network: small packets
    pass, full-size frames are dropped silently where they enter it."""
    kind, symptom_needs = "mtu", "a full-size ping (reaches(..., size=1472)) across the bridge"

    def plant(self):
        link = self.lab.snapshot(kinds={"links"}).link(HOST, self.c.host_port)
        self.saved["mtu"] = link.mtu
        self.sh(f"ip link set {self.c.host_port} mtu {link.mtu - 100}")

    def repair(self) -> list[str]:
        return [f"ip link set {self.c.host_port} mtu {self.saved['mtu']}"]

    def allowed_mtu(self):
        return {(HOST, self.c.host_port), (HOST, self.c.bridge)}

    def fixed(self, snapshot):
        port = snapshot.link(HOST, self.c.host_port).mtu
        inside = snapshot.link(self.c.ns, self.c.dev).mtu
        return [Verdict(port == inside == self.saved["mtu"],
                        f"{self.c.host_port} and {self.c.ns}'s {self.c.dev} have the network's MTU, {self.saved['mtu']}",
                        f"{self.c.host_port} has MTU {port} and {self.c.dev} in {self.c.ns} {inside}: "
                        "a frame bigger than the receiving end's MTU is dropped")]

    def hints(self):
        return ["Small pings pass, full-size ones die: compare ping -s 56 with ping -s 1472 (and -M do). "
                f"Then look at every interface on the way: ip link show | grep mtu, in {self.c.ns} and on the host.",
                f"Layer 2, the MTU: a frame larger than the MTU of the interface receiving it is dropped, "
                f"without an ICMP error. One end of {self.c.ns}'s cable disagrees with the other.",
                "The fix: " + " && ".join(self.repair())]


class _Overlay(Fault):
    """A fault of a VXLAN overlay (notebook 09), relative to the probe: its container, the
    host it lives on (the container's veth leads to that host's bridge), the host's VXLAN
    device, and the far host behind which the probe's target lives — read from the kernel."""
    symptom_needs = "a 1500-byte ping (reaches(..., size=1472)) between containers on two hosts joined by VXLAN"

    def locate(self) -> None:
        snapshot = self.lab.snapshot(kinds={"fdb"})
        hosted = snapshot.hosted()
        target = self.c.probe._address()
        owner = next((ns.name for ns in snapshot.namespaces.values()
                      if any(a.split("/")[0] == target for link in ns.links for a in link.addresses)), None)
        self.host, self.far, self.owner = hosted.get(self.c.ns), hosted.get(owner), owner
        devices = {name: [link for link in snapshot.namespaces[name].links if link.vxlan]
                   for name in (self.host, self.far) if name in snapshot.namespaces}
        if not self.host or not self.far or self.host == self.far or not all(devices.get(n) for n in (self.host, self.far)):
            raise LabError(f"fault {self.kind} needs {self.symptom_needs}")
        self.device, far = devices[self.host][0], devices[self.far][0]
        self.far_address = far.vxlan["local"] or next(
            a.split("/")[0] for a in snapshot.link(self.far, far.vxlan["dev"]).notable_addresses)
        self.underlay = snapshot.link(self.host, self.device.vxlan["dev"] or "eth0")
        self.eth0 = snapshot.link(self.c.ns, "eth0")
        self.remotes = sorted({e.dst for e in snapshot.namespaces[self.host].fdb
                               if e.port == self.device.name and e.dst and e.mac == "00:00:00:00:00:00"})

    def forget(self) -> None:
        """Forget what both ends and their hosts learned of each other, so the fault shows at
        once (flood and learn would otherwise carry known MACs a while longer)."""
        commands = []
        for host in (self.host, self.far):
            run = f"ip netns exec {host} "
            learned = self.lab.sh(f"{run}bridge fdb show dev {self.device.name}", check=False).stdout.splitlines()
            for line in learned:
                words = line.split()
                if not words or words[0] == "00:00:00:00:00:00" or "permanent" in words:
                    continue
                where = "master" if "master" in words else "self"
                commands.append(f"{run}bridge fdb del {words[0]} dev {self.device.name} {where}")
        commands += [f"ip netns exec {ns} ip neigh flush dev eth0" for ns in (self.c.ns, self.owner)]
        self.lab.sh("; ".join(commands), check=False)

    def tunnel(self):
        from .checks import encapsulated
        return encapsulated(self.c.ns, self.c.probe._address(), vni=self.device.vxlan["id"],
                            port=self.device.vxlan["dstport"])

    def device_as_built(self, remotes: list[str]):
        from .checks import vxlan
        return vxlan(self.host, self.device.name, vni=self.device.vxlan["id"], dstport=self.device.vxlan["dstport"],
                     master=self.device.master, remotes=remotes)

    def recreate(self, vni: int) -> list[str]:
        """The commands that make the host's VXLAN device again with `vni` (it cannot be
        changed in place), on its bridge, with its flood entries."""
        d, run = self.device, f"ip netns exec {self.host} "
        local = f" local {d.vxlan['local']}" if d.vxlan["local"] else ""
        return [f"{run}ip link del {d.name}",
                f"{run}ip link add {d.name} type vxlan id {vni} dstport {d.vxlan['dstport']} dev "
                f"{d.vxlan['dev']}{local}",
                f"{run}ip link set {d.name} master {d.master} up",
                *[f"{run}bridge fdb append 00:00:00:00:00:00 dev {d.name} dst {r}" for r in self.remotes]]


class VxlanMtu(_Overlay):
    kind = "vxlan_mtu"

    def plant(self):
        self.locate()
        self.saved["mtu"] = self.eth0.mtu
        self.sh(f"ip link set eth0 mtu {self.underlay.mtu}", self.c.ns)

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.c.ns} ip link set eth0 mtu {self.saved['mtu']}"]

    def allowed_mtu(self):
        return {(self.c.ns, "eth0")}     # the fix is an MTU change

    def fixed(self, snapshot):
        limit = self.underlay.mtu - 50
        mtu = snapshot.link(self.c.ns, "eth0").mtu
        return [Verdict(mtu <= limit, f"{self.c.ns}'s eth0 leaves room for VXLAN's 50 bytes (MTU at most {limit})",
                        f"its MTU is {mtu}: frames that size do not fit the tunnel"), self.tunnel().judge(self.lab, snapshot)]


class VxlanFdb(_Overlay):
    kind = "vxlan_fdb"

    def plant(self):
        self.locate()
        self.sh(f"bridge fdb del 00:00:00:00:00:00 dev {self.device.name} dst {self.far_address}", self.host)
        self.forget()

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.host} bridge fdb append 00:00:00:00:00:00 dev {self.device.name} "
                f"dst {self.far_address}"]

    def fixed(self, snapshot):
        return [self.device_as_built(self.remotes).judge(self.lab, snapshot), self.tunnel().judge(self.lab, snapshot)]


class VxlanVni(_Overlay):
    kind = "vxlan_vni"

    def plant(self):
        self.locate()
        for command in self.recreate(self.device.vxlan["id"] + 1):
            self.lab.sh(command)
        self.forget()

    def repair(self) -> list[str]:
        return self.recreate(self.device.vxlan["id"])

    def allowed_remade(self) -> set[tuple[str, str]]:
        return {(self.host, self.device.name)}   # a VNI cannot be changed in place

    def fixed(self, snapshot):
        return [self.device_as_built(self.remotes).judge(self.lab, snapshot), self.tunnel().judge(self.lab, snapshot)]




class RateLimit(Fault):
    """A token-bucket queue on the probe's interface: every packet waits for tokens."""
    kind, symptom_needs = "rate_limit", "an expect.fast probe (throughput)"

    def plant(self):
        self.sh(f"tc qdisc add dev {self.c.dev} root tbf rate 40mbit burst 16kb latency 50ms", self.c.ns)

    def repair(self) -> list[str]:
        return [f"ip netns exec {self.c.ns} tc qdisc del dev {self.c.dev} root"]

    def fixed(self, snapshot):
        return [_no_qdisc(self, "tbf", "a tbf queue (rate limit)")]


class PacketLoss(Fault):
    """A FORWARD rule that drops one TCP packet in ten, at random: pings pass, TCP crawls
    (every loss costs a retransmission and halves the sending window)."""
    kind, symptom_needs = "packet_loss", "an expect.fast probe routed or bridged through FORWARD"

    def plant(self):
        self.sh("iptables -I FORWARD 1 -p tcp -m statistic --mode random --probability 0.1 -j DROP")
        self.saved["rule"] = next(line for line in self.sh("iptables -S FORWARD").splitlines()
                                  if "--mode random" in line)

    def allowed_removals(self):
        return {(HOST, "filter", "FORWARD", self.saved["rule"])}

    def repair(self) -> list[str]:
        return [f"iptables {self.saved['rule'].replace('-A ', '-D ', 1)}"]

    def fixed(self, snapshot):
        present = any("--mode random" in r.rule for r in snapshot.namespaces[HOST].rules
                      if r.table == "filter" and r.chain == "FORWARD")
        return [Verdict(not present, "no FORWARD rule drops packets at random",
                        "a FORWARD rule still drops some packets: watch its counter with iptables -L FORWARD -v -n")]


def _no_qdisc(fault: Fault, qdisc: str, what: str) -> Verdict:
    shown = fault.sh(f"tc qdisc show dev {fault.c.dev}", fault.c.ns)
    there = re.search(rf"^qdisc {qdisc}\b", shown, re.M) is not None
    return Verdict(not there, f"{fault.c.dev} in {fault.c.ns} has no {qdisc} queue",
                   f"{what} is still on {fault.c.dev}: see tc qdisc show dev {fault.c.dev} in {fault.c.ns}")


class WrongNetwork(Fault):
    """The container's cable plugged into another Docker network's bridge: what a wrong
    `--network` (or `docker network connect` to the wrong network) leaves."""
    kind, symptom_needs = "wrong_network", "a probe through the gateway, with a second bridge in the lab host"

    def plant(self):
        if not self.c.bridge or not self.c.host_port:
            raise LabError(f"{self.c.ns}'s cable is not on a bridge: there is no network to plug it out of")
        bridges = [line.split(":")[1].strip().split("@")[0] for line in
                   self.sh("ip -o link show type bridge").splitlines() if line.strip()]
        others = sorted(b for b in bridges if b != self.c.bridge)
        if not others:
            raise LabError("wrong_network needs a second bridge (another network) in the lab host")
        self.saved["other"] = others[0]
        self.sh(f"ip link set {self.c.host_port} master {others[0]}")

    def repair(self) -> list[str]:
        return [f"ip link set {self.c.host_port} master {self.c.bridge}"]

    def fixed(self, snapshot):
        from .checks import bridge_port
        return [bridge_port(self.c.bridge, self.c.host_port).judge(self.lab, snapshot)]


KINDS = {cls.kind: cls for cls in (LoDown, DefaultRoute, IpForward, Masquerade, ForwardDrop, ResolvConf,
                                   StaleArp, Hairpin, ForwardAccepts, LoopbackOnly, RpFilter, MtuMismatch, VxlanMtu, VxlanFdb,
                                   VxlanVni, RateLimit, PacketLoss, WrongNetwork)}


def choose(exercise: str, among: list[str], seed: str | None = None) -> tuple[str, str]:
    """(kind, seed): the learner's fault, the same every time for the same seed."""
    forced = os.environ.get("LABLIB_FAULT", "")
    seed = seed or os.environ.get("LABLIB_FAULT_SEED") or f"{getpass.getuser()}:{exercise}"
    if forced:
        for part in forced.split(","):    # "arp" or "05-f1=arp,07-f1=hairpin"
            key, _, kind = part.rpartition("=")
            if key in ("", exercise) and kind in among:
                return kind, seed
    digest = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return among[digest % len(among)], seed


class PlantedFault:
    """The fault a learner must find. Its repr shows only the symptom."""

    def __init__(self, lab, exercise: str, among: list[str], probe: reaches, seed: str | None = None):
        unknown = [kind for kind in among if kind not in KINDS]
        if unknown:
            raise LabError(f"unknown fault {unknown[0]!r}; choose among: {', '.join(KINDS)}")
        if not isinstance(probe, (reaches, fast)) or type(probe).__name__ not in ("reaches", "fast"):
            raise LabError("probe= must be an expect.reaches(...) or expect.fast(...) that works before "
                           "the fault is planted")
        self.lab, self.exercise, self.probe = lab, exercise, probe
        self.kind, self.seed = choose(exercise, list(among), seed)
        # A probe from the outside world (world:client) needs the world's namespaces read too.
        self._world = probe.src.startswith("world:")
        before = lab.snapshot(kinds={"routes", "rules", "sysctls"}, world=self._world)
        if not probe.judge(lab, before).ok:
            raise LabError(f"{exercise}: the probe ({probe._claim()}) fails before any fault is planted; "
                           "plant a fault in a working network")
        self._fault = KINDS[self.kind](lab, Context(lab, probe, before))
        self._fault.plant()
        self.baseline = lab.snapshot(kinds={"links", "routes", "rules", "sysctls"}, world=self._world)
        self.symptom = self._symptom()
        if self.symptom is None:
            raise LabError(f"{exercise}: fault {self.kind} does not break the probe ({probe._claim()}); "
                           f"it breaks {KINDS[self.kind].symptom_needs}")
        self.result: CheckResult | None = None
        self.hints_used = 0
        from ..course.progress import record
        record(exercise, _Planted(exercise, self.kind, self.seed), kind="fault-planted", fault=self.kind,
               seed=self.seed)

    def report(self) -> str:
        """The symptom as a user would report it: "c2 can't reach http://example.com/"."""
        who = self.probe.src.replace("world:", "the outside ")
        size = getattr(self.probe, "size", None)
        return f"{who} can't reach {self.probe.target}" + (f" with a full-size {size + 28}-byte packet" if size else "")

    def hint(self) -> "Hint":
        """The next hint: first where to look, then which layer, then the fix. Each one
        asked for is written to the progress file (the instructor sees how many were used)."""
        hints = self._fault.hints()
        self.hints_used = min(self.hints_used + 1, len(hints))
        from ..course.progress import record
        record(self.exercise, _Planted(self.exercise, self.kind, self.seed), kind="fault-hint", fault=self.kind,
               seed=self.seed, hints=self.hints_used)
        return Hint(self.hints_used, len(hints), hints[self.hints_used - 1])

    def solution(self) -> list[str]:
        """The commands that repair the planted fault — for the notebook's hidden solution
        cell (`for command in fault.solution(): lab.sh(command)`), never for the learner."""
        return self._fault.repair()

    def _symptom(self) -> str | None:
        if isinstance(self.probe, fast):
            return self.probe.symptom(self.lab)
        command, _ = self.probe._command()
        from .checks import _probe
        result = _probe(self.lab, command, self.probe.src, self.probe.timeout + 5)
        if result is not None and result.ok:
            return None
        said = "" if result is None else next((line.strip() for line in reversed(
            (result.stderr + "\n" + result.stdout).splitlines()) if line.strip()), "")
        said = re.sub(r"after \d+ milliseconds", f"after {self.probe.timeout:g} s", said)   # same words each run
        return f"`{command}` in {self.probe.src} " + (f"fails: {said}" if said else "gets no answer")

    def check(self) -> CheckResult:
        """✅ when the probe works again, the planted fault is undone, and nothing was
        flattened to get there."""
        snapshot = self.lab.snapshot(kinds={"links", "routes", "rules", "sysctls", "neighbours"}, world=self._world)
        probe = self.probe.judge(self.lab, snapshot)
        if not probe.ok:
            # The probe's own hint would name the fault: say only that the symptom remains.
            still = self._symptom() or "it failed once, then worked: run the check again"
            verdicts = [Verdict(False, probe.claim, f"still broken: {still}")]
            # A workaround or a change elsewhere is worth naming even while the symptom stays.
            verdicts += [v for v in self._no_workaround(snapshot) if not v.ok]
        else:
            # Named alike for every kind: the notebook's output must not tell one learner's
            # fault from another's (the hint does, once the probe works).
            undone = self._fault.fixed(snapshot)
            fixed = Verdict(all(v.ok for v in undone), "the fault itself is undone, not worked around",
                            "; ".join(f"{v.claim}: {v.hint}" for v in undone if not v.ok))
            verdicts = [probe, fixed, *self._no_workaround(snapshot)]
        result = CheckResult(self.exercise, verdicts)
        result.kind, result.fault = "fault", self.kind
        self.result = result
        from ..course.progress import record
        record(self.exercise, result, fault=self.kind, seed=self.seed, hints=self.hints_used)
        return _FaultResult(result, self.kind, self.hints_used)

    def _no_workaround(self, snapshot: Snapshot) -> list[Verdict]:
        claim = "the network was repaired, not replaced (namespaces, links, rules and policies kept)"
        old, new = self.baseline.namespaces, snapshot.namespaces
        gone = [ns for ns in old if ns not in new]
        if gone:
            return [Verdict(False, claim, f"namespace {gone[0]} was deleted: the fault is in the network as it was; "
                                          "rebuild it as it was, then find the one thing that is wrong")]
        added = [ns for ns in new if ns not in old]
        if added:
            return [Verdict(False, claim, f"new namespace {added[0]}: fix the network that is there, "
                                          f"not a new one (ip netns del {added[0]})")]
        for ns, namespace in old.items():
            now = {link.name: link.index for link in new[ns].links}
            lost = [link.name for link in namespace.links if link.name not in now]
            if lost:
                return [Verdict(False, claim, f"{lost[0]} in {ns} was deleted or renamed: put it back as it was")]
            remade = [link.name for link in namespace.links if now[link.name] != link.index
                      and (ns, link.name) not in self._fault.allowed_remade()]
            if remade:
                return [Verdict(False, claim, f"{remade[0]} in {ns} was deleted and made again: that rebuilds the "
                                              "network instead of finding what was wrong with it")]
            for link in namespace.links:
                current = new[ns].link(link.name)
                if current is not None and link.mtu and current.mtu and current.mtu != link.mtu \
                        and (ns, link.name) not in self._fault.allowed_mtu():
                    return [Verdict(False, claim, f"{link.name} in {ns}: its mtu was changed from {link.mtu} to "
                                                  f"{current.mtu}, which was not the fault; put it back: "
                                                  f"{'' if ns == HOST else f'ip netns exec {ns} '}ip link set "
                                                  f"{link.name} mtu {link.mtu}")]
        allowed = self._fault.allowed_removals()
        for ns, namespace in old.items():
            now = {(r.table, r.chain, r.rule) for r in new[ns].rules}
            for r in namespace.rules:
                if r.source != "iptables":
                    continue
                if r.rule.startswith("policy") and (r.table, r.chain, r.rule) not in now:
                    have = next((x.rule for x in new[ns].rules if (x.table, x.chain) == (r.table, r.chain)
                                 and x.rule.startswith("policy")), "")
                    return [Verdict(False, claim, f"the {r.table} {r.chain} {r.rule} was changed ({have}): set it "
                                                  f"back: iptables -t {r.table} -P {r.chain} {r.rule.split()[1]}")]
                if (r.table, r.chain, r.rule) not in now and (ns, r.table, r.chain, r.rule) not in allowed:
                    missing = sum(1 for x in namespace.rules if x.source == "iptables"
                                  and (x.table, x.chain, x.rule) not in now)
                    return [Verdict(False, claim, f"{missing} rule(s) that were there are gone (such as `{r.rule}` in "
                                                  f"{r.table}): the fault was one thing; put them back "
                                                  f"(iptables -t {r.table} {r.rule})")]
            for r in new[ns].rules:
                if r.source == "iptables" and (r.table, r.chain) == ("filter", "FORWARD") and \
                        r.rule.split() == ["-A", "FORWARD", "-j", "ACCEPT"]:
                    return [Verdict(False, claim, "`-A FORWARD -j ACCEPT` accepts everything: that hides the "
                                                  "fault instead of fixing it; delete it: iptables -D FORWARD -j ACCEPT")]
        return [Verdict(True, claim)]

    def __repr__(self) -> str:
        lines = [f"🔧 {self.exercise}: something in this network is broken (your seed: {self.seed}).",
                 f"   reported: {self.report()}",
                 f"   symptom: {self.symptom}",
                 "   find the cause with ip, ss, iptables -L -v -n, tcpdump, conntrack; fix that one thing; "
                 "then run the check"]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))


class _FaultResult(CheckResult):
    def __init__(self, result: CheckResult, kind: str, hints: int = 0):
        super().__init__(result.exercise, result.verdicts)
        self.fault_kind, self.hints = kind, hints

    def text(self) -> str:
        text = super().text()
        return text + (f"\n  the fault was: {self.fault_kind}" if self.passed else "")

    def data(self) -> dict:
        # The kind stays out of the notebook's data: it differs per learner (and nbval
        # compares this data as it is); the progress file has it.
        data = super().data()
        data["kind"] = "fault"
        data["hints"] = self.hints
        return data


class Hint:
    def __init__(self, number: int, of: int, text: str):
        self.number, self.of, self.text = number, of, text

    def __repr__(self) -> str:
        return f"💡 hint {self.number}/{self.of}: {self.text}"

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))


class FaultHunts:
    """A challenge set: `count` faults drawn for this learner from `probes` (kind → the probe
    it breaks), planted one at a time with `next()`, each fixed and checked before the next.
    The draw (which kinds, in which order) is fixed by the seed, as for one fault."""

    def __init__(self, lab, exercise: str, probes: dict, count: int = 8, seed: str | None = None):
        unknown = [kind for kind in probes if kind not in KINDS]
        if unknown:
            raise LabError(f"unknown fault {unknown[0]!r}; choose among: {', '.join(KINDS)}")
        if count > len(probes):
            raise LabError(f"{exercise}: {count} faults asked for, but only {len(probes)} kinds given")
        self.lab, self.exercise, self.probes, self.count = lab, exercise, dict(probes), count
        self.seed = seed or os.environ.get("LABLIB_FAULT_SEED") or f"{getpass.getuser()}:{exercise}"
        rank = {k: hashlib.sha256(f"{self.seed}:{k}".encode()).hexdigest() for k in probes}
        self.kinds = sorted(probes, key=rank.get)[:count]
        self.faults: list[PlantedFault] = []

    def next(self, exercise: str | None = None) -> PlantedFault:
        """Plant the next fault of the set (the previous one must be fixed first).
        `exercise` names it ("10-3.2"), as the notebook's cell says which round it is."""
        if len(self.faults) == self.count:
            raise LabError(f"{self.exercise}: all {self.count} faults were planted; that was the last")
        if self.faults and not (self.faults[-1].result and self.faults[-1].result.passed):
            raise LabError(f"{self.faults[-1].exercise} is not solved yet: fix it and run its check "
                           "(fault.check()) before the next one")
        expected = f"{self.exercise}.{len(self.faults) + 1}"
        if exercise is not None and exercise != expected:
            raise LabError(f"the next fault of {self.exercise} is {expected}, not {exercise}: run the cells in order")
        exercise = expected
        kind = self.kinds[len(self.faults)]
        forced = kind
        for part in os.environ.get("LABLIB_FAULT", "").split(","):    # "10-3.2=mtu" forces one round
            key, _, wanted = part.rpartition("=")
            if key in ("", exercise) and wanted in self.probes:
                forced = wanted
                break
        fault = PlantedFault(self.lab, exercise, [forced], self.probes[forced], self.seed)
        self.faults.append(fault)
        return fault

    def table(self):
        """One row per fault planted so far: the report, hints used, solved (the kind only once solved)."""
        import pandas as pd
        return pd.DataFrame([{"exercise": f.exercise, "reported": f.report(), "hints": f.hints_used,
                              "solved": "✅" if f.result and f.result.passed else "❌",
                              "fault": f.kind if f.result and f.result.passed else ""} for f in self.faults])

    def __repr__(self) -> str:
        return (f"🔧 {self.exercise}: {self.count} faults, drawn for you (your seed: {self.seed}), one at a time.\n"
                "   fault = hunts.next() plants the next; fault.hint() gives a hint (ask again for more); "
                "fault.check() judges your fix.")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(repr(self))


class _Planted:
    passed = False

    def __init__(self, exercise: str, kind: str, seed: str):
        self.exercise, self.fault, self.seed = exercise, kind, seed

    def data(self) -> dict:
        return {"kind": "fault-planted", "exercise": self.exercise}
