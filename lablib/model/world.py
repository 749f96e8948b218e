"""The simulated outside world every lab host is plugged into: its hosts and addresses.

    lab host eth0 203.0.113.10 ── 203.0.113.1  internet (a router)  192.0.2.1 ── client 192.0.2.10
                                                    │ 198.51.100.1 (bridge "servers")
                                     ┌──────────────┴──────────────┐
                     example.com 198.51.100.10          DNS server 198.51.100.53

It uses only the documentation ranges and behaves like the real internet: the router
knows the routes to its own networks and to the lab host's uplink, nothing else — so
a container's packet that leaves without NAT reaches the server, and the reply dies at
the router. Its namespaces live outside /run/netns, so `ip netns list` never shows them;
lablib reaches them as ns="world:NAME".
"""
from __future__ import annotations

from dataclasses import dataclass

from .names import world_ns

UPLINK = "eth0"
PREFIX = 24


@dataclass(frozen=True)
class OutsideHost:
    """A machine of the simulated outside world."""
    name: str
    address: str
    role: str
    hostnames: tuple[str, ...] = ()

    @property
    def ns(self) -> str:
        """What to pass as `ns=` to run a command on this host."""
        return world_ns(self.name)


HOST_UPLINK = "203.0.113.10"      # the lab host's own address on eth0
GATEWAY = "203.0.113.1"           # the internet router, seen from the lab host
STUB_RESOLVER = "127.0.0.53"      # the lab host's local resolver, as on Ubuntu

ROUTER = OutsideHost("internet", GATEWAY, "router between the lab host and the outside world",
                     ("router.example.net",))
WEB = OutsideHost("web", "198.51.100.10", "web server; its reply shows the address it saw you come from",
                  ("example.com", "www.example.com"))
DNS = OutsideHost("dns", "198.51.100.53", "DNS server for the outside world's names",
                  ("resolver.example.net",))
CLIENT = OutsideHost("client", "192.0.2.10", "a machine out on the internet, to reach the lab host from outside",
                     ("client.example.org",))
HOSTS = (ROUTER, WEB, DNS, CLIENT)


@dataclass(frozen=True)
class World:
    """What a learner needs to know about the outside world of their lab host."""
    uplink: str = UPLINK
    host_address: str = HOST_UPLINK
    gateway: str = GATEWAY
    stub_resolver: str = STUB_RESOLVER
    router: OutsideHost = ROUTER
    web: OutsideHost = WEB
    dns: OutsideHost = DNS
    client: OutsideHost = CLIENT

    def summary(self) -> str:
        rows = [
            f"lab host     {self.uplink} {self.host_address}/{PREFIX}, default route via {self.gateway} (the internet router)",
            f"example.com  {self.web.address}   web server: its reply shows the client address it saw",
            f"DNS server   {self.dns.address}  the outside world's resolver; the lab host asks it through {self.stub_resolver}",
            f"client       {self.client.address}     a machine outside: lab.sh(cmd, ns=\"{self.client.ns}\")",
        ]
        return "\n".join(rows)
