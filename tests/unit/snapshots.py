"""Hand-built snapshots: a few lines make a namespace, a veth pair, a bridge with ports."""
from __future__ import annotations

from lablib.model.state import HOST, Link, Namespace, Route, Rule, Snapshot


class Build:
    """Assemble a Snapshot the way the kernel would report it."""

    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {HOST: Namespace(HOST)}
        self._index: dict[str, int] = {}

    def ns(self, name: str, lo_up: bool = True) -> Namespace:
        if name not in self.namespaces:
            self.namespaces[name] = Namespace(name)
            self.link(name, "lo", "loopback", up=lo_up, addresses=["127.0.0.1/8"] if lo_up else [])
        return self.namespaces[name]

    def link(self, ns: str, name: str, kind: str = "device", *, up: bool = True, carrier: bool = True,
             addresses: list[str] | None = None, master: str | None = None) -> Link:
        namespace = self.namespaces[ns] if ns == HOST else self.ns(ns)
        index = self._index[ns] = self._index.get(ns, 0) + 1
        link = Link(ns, index, name, kind, f"02:00:00:00:{len(self._index):02x}:{index:02x}", 1500,
                    "UP" if up and carrier else "DOWN", admin_up=up, lower_up=up and carrier, master=master,
                    addresses=list(addresses or []))
        namespace.links.append(link)
        return link

    def veth(self, one: tuple[str, str], other: tuple[str, str], *, addresses: tuple = ((), ()),
             master: str | None = None, up: bool = True) -> tuple[Link, Link]:
        """A veth pair; `master` makes the second end a port of that bridge."""
        a = self.link(one[0], one[1], "veth", addresses=list(addresses[0]), up=up)
        b = self.link(other[0], other[1], "veth", addresses=list(addresses[1]), master=master, up=up)
        a.peer, b.peer = b.key, a.key
        return a, b

    def route(self, ns: str, dst: str, dev: str | None, gateway: str | None = None, **more) -> Route:
        route = Route(ns, dst, dev, gateway, scope="link" if gateway is None else "global", **more)
        self.namespaces[ns].routes.append(route)
        return route

    def rule(self, ns: str, table: str, chain: str, rule: str, packets: int = 0) -> Rule:
        made = Rule(ns, "ip", table, chain, rule, packets, packets * 84, "iptables")
        self.namespaces[ns].rules.append(made)
        return made

    def container(self, name: str, address: str, gateway: str | None, bridge: str = "br0") -> None:
        """What lab.build makes: eth0 in `name`, its peer veth-NAME a port of `bridge`."""
        self.veth((name, "eth0"), (HOST, f"veth-{name}"), addresses=([address], []), master=bridge)
        network = address.rsplit(".", 1)[0] + ".0/" + address.split("/")[1]
        self.route(name, network, "eth0")
        if gateway:
            self.route(name, "default", "eth0", gateway)

    def snapshot(self) -> Snapshot:
        return Snapshot(dict(self.namespaces), taken=0.0)


def two_containers(forward: str = "1") -> Build:
    """c1 10.0.0.2 and c2 10.0.0.3 on br0 10.0.0.1/24, as lab.build(["c1", "c2"]) makes them."""
    lab = Build()
    lab.link(HOST, "lo", "loopback", addresses=["127.0.0.1/8"])
    lab.link(HOST, "eth0", "veth", addresses=["203.0.113.10/24"])
    lab.link(HOST, "br0", "bridge", addresses=["10.0.0.1/24"])
    lab.route(HOST, "default", "eth0", "203.0.113.1")
    lab.route(HOST, "10.0.0.0/24", "br0")
    lab.namespaces[HOST].sysctls["net.ipv4.ip_forward"] = forward
    lab.container("c1", "10.0.0.2/24", "10.0.0.1")
    lab.container("c2", "10.0.0.3/24", "10.0.0.1")
    return lab
