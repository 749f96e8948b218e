"""Inside the sandbox: read every namespace of the lab host into one Snapshot.

Netlink for links, addresses, routes, neighbours, the bridge FDB, sockets and nft
tables (netlink.py: messages as pyroute2 declares them, read without its slow generic
decoder), and pyroute2's Conntrack for connections, asked only in namespaces whose
conntrack table has entries — no parsing of `ip` output. Firewall rules are read as the
learner would list them — `iptables-save -c` for tables iptables manages — and native
nft tables from `nft -j list ruleset`, only in namespaces that have any table at all,
which netlink tells cheaply.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

# The whole package first: the agent imports it in a thread of its own at start-up, and a
# submodule imported meanwhile from here could be found half-initialised.
import pyroute2  # noqa: F401
from pyroute2.netlink import NETLINK_NETFILTER, NETLINK_ROUTE, NETLINK_SOCK_DIAG
from pyroute2.netlink.diag import (
    SOCK_DIAG_BY_FAMILY,
    SS_CLOSE,
    SS_LISTEN,
    inet_diag_msg,
    inet_diag_req,
)
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETTABLE, nft_table_msg
from pyroute2.netlink.rtnl import (
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETNEIGH,
    RTM_GETROUTE,
    rt_proto,
    rt_scope,
    rt_type,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_LOWER_UP, IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.ifinfmsg import state_by_code as OPERSTATES
from pyroute2.netlink.rtnl.ifinfmsg.plugins.vxlan import vxlan as vxlan_data
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT, ndmsg
from pyroute2.netlink.rtnl.ndmsg import states as NUD_STATES
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ..model.names import sysctl_path
from ..model.state import (
    HOST,
    WORLD_PREFIX,
    Connection,
    FdbEntry,
    Link,
    Namespace,
    Neighbour,
    Route,
    Rule,
    Snapshot,
    Socket,
)
from . import netlink
from .labhost import WORLD
from .linux import in_fresh_thread, process_ids, setns, socket_inodes
from .runner import netns_names

KINDS = frozenset({"links", "routes", "neighbours", "fdb", "sysctls", "rules", "connections", "sockets"})
SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.route_localnet")
# Numbers to the names iproute2 prints, from pyroute2's tables (scope 0 is "global" to `ip`).
SCOPES = {number: name for name, number in rt_scope.items() if isinstance(name, str)} | {0: "global"}
PROTOCOLS = {number: name for name, number in rt_proto.items() if isinstance(name, str) and name != "unspec"}
ROUTE_TYPES = {number: name for name, number in rt_type.items() if isinstance(name, str) and name != "unspec"}
NEIGHBOUR_STATES = {number: name.upper() for name, number in NUD_STATES.items() if number}
MAIN_TABLE, LOCAL_TABLE = 254, 255          # RT_TABLE_MAIN, RT_TABLE_LOCAL (pyroute2 exports none)
# Message layouts, as pyroute2 declares them.
LINK, ADDRESS, ROUTE = netlink.Layout(ifinfmsg), netlink.Layout(ifaddrmsg), netlink.Layout(rtmsg)
NEIGHBOUR, TABLE = netlink.Layout(ndmsg), netlink.Layout(nft_table_msg)
SOCKET_REQUEST, SOCKET = netlink.Layout(inet_diag_req), netlink.Layout(inet_diag_msg)
IFLA = LINK.attributes
IFLA_INFO_KIND = netlink.attribute_numbers(ifinfmsg.ifinfo)["IFLA_INFO_KIND"]
IFLA_INFO_DATA = netlink.attribute_numbers(ifinfmsg.ifinfo)["IFLA_INFO_DATA"]
VXLAN = netlink.attribute_numbers(vxlan_data)
IFA, RTA, NDA = ADDRESS.attributes, ROUTE.attributes, NEIGHBOUR.attributes
# Chains of the trace plumbing (trace.py): never shown to the learner.
HIDDEN_TABLES = {"lablib_trace"}


def natural_order(name: str) -> list:
    """c2 before c10, as a person counts."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def namespace_paths(world: bool) -> dict[str, str | None]:
    paths: dict[str, str | None] = {HOST: None}
    paths.update((name, f"/run/netns/{name}") for name in sorted(netns_names(), key=natural_order))
    if world and WORLD.exists():
        paths.update((WORLD_PREFIX + name, str(WORLD / name)) for name in sorted(os.listdir(WORLD)))
    return paths


def read(kinds: frozenset[str] = KINDS, namespaces: list[str] | None = None,
         world: bool = False) -> Snapshot:
    """Read the lab host; `namespaces` limits which, `world` adds the outside world."""
    started = time.monotonic()
    paths = namespace_paths(world or any(n.startswith(WORLD_PREFIX) for n in namespaces or []))
    if namespaces is not None:
        paths = {name: path for name, path in paths.items() if name in namespaces}
    processes = _socket_owners() if "sockets" in kinds else {}
    read_all = lambda: {name: _read_namespace(name, path, kinds, processes) for name, path in paths.items()}
    result = in_fresh_thread(read_all, name="snapshot")
    _pair_veths(result, paths)
    return Snapshot(result, time.time(), time.monotonic() - started)


def _read_namespace(name: str, path: str | None, kinds: frozenset[str], owners: dict) -> Namespace:
    if path is not None:
        try:
            with open(path) as ns:
                setns(ns.fileno())
        except OSError:
            return Namespace(name)   # deleted while we read
    else:
        with open("/proc/1/ns/net") as ns:    # back to the lab host's own namespace
            setns(ns.fileno())
    namespace = Namespace(name)
    with netlink.Socket(NETLINK_ROUTE) as rtnl:
        raw_links = list(rtnl.dump(RTM_GETLINK, LINK))
        names = {LINK.field(raw, "index"): raw.text(IFLA["IFLA_IFNAME"]) for raw in raw_links}
        addresses: dict[int, list[str]] = {}
        for raw in rtnl.dump(RTM_GETADDR, ADDRESS):
            family = ADDRESS.field(raw, "family")
            addresses.setdefault(ADDRESS.field(raw, "index"), []).append(
                f"{raw.address(IFA['IFA_ADDRESS'], family)}/{ADDRESS.field(raw, 'prefixlen')}")
        namespace.links = [_link(name, raw, names, addresses) for raw in raw_links]
        if "routes" in kinds:
            # The main table, as `ip route` shows it (the local table holds the kernel's own).
            namespace.routes = [route for raw in rtnl.dump(RTM_GETROUTE, ROUTE, ROUTE.pack(family=socket.AF_INET))
                                if (route := _route(name, raw, names)) is not None]
        if "neighbours" in kinds:
            namespace.neighbours = _neighbours(name, rtnl, names)
        tunnels = [link for link in namespace.links if link.vxlan is not None]
        if tunnels or "fdb" in kinds:
            entries = _fdb(name, rtnl, names)
            for link in tunnels:
                link.vxlan["remotes"] = sorted({e.dst for e in entries if e.port == link.name and e.dst})
                # Where broadcasts (ARP) go: the all-zeros entries (`bridge fdb append 00:00:...`).
                link.vxlan["flood"] = sorted({e.dst for e in entries if e.port == link.name and e.dst
                                              and e.mac == "00:00:00:00:00:00"})
            if "fdb" in kinds:
                namespace.fdb = entries
    if "sysctls" in kinds:
        namespace.sysctls = {key: _sysctl(key) for key in SYSCTLS}
    if "rules" in kinds and _has_tables():
        namespace.rules = _iptables_rules(name)
        # iptables-nft's tables show up in nft too; list each rule once, as iptables-save does.
        managed = {rule.table for rule in namespace.rules}
        namespace.rules += [rule for rule in _nft_rules(name)
                            if not (rule.family == "ip" and rule.table in managed)]
    if "connections" in kinds and _sysctl("net.netfilter.nf_conntrack_count") not in ("0", ""):
        namespace.connections = _connections(name)
    if "sockets" in kinds:
        namespace.sockets = _sockets(name, owners)
    return namespace


def _link(ns: str, raw: netlink.Message, names: dict[int, str], addresses: dict[int, list[str]]) -> Link:
    info = raw.nested(IFLA["IFLA_LINKINFO"])
    kind_span = info.get(IFLA_INFO_KIND)
    kind = raw.data[kind_span[0]:kind_span[1]].rstrip(b"\0").decode() if kind_span else None
    name = raw.text(IFLA["IFLA_IFNAME"])
    if kind is None:
        kind = "loopback" if name == "lo" else "device"
    index, flags = LINK.field(raw, "index"), LINK.field(raw, "flags")
    master = raw.u32(IFLA["IFLA_MASTER"])
    operstate = raw.u8(IFLA["IFLA_OPERSTATE"])
    return Link(ns=ns, index=index, name=name, kind=kind, mac=raw.mac(IFLA["IFLA_ADDRESS"]) or "",
                mtu=raw.u32(IFLA["IFLA_MTU"]) or 0,
                operstate=OPERSTATES.get(operstate, "UNKNOWN") if operstate is not None else "UNKNOWN",
                admin_up=bool(flags & IFF_UP), lower_up=bool(flags & IFF_LOWER_UP),
                master=names.get(master) if master else None,
                peer_index=raw.u32(IFLA["IFLA_LINK"]) if kind == "veth" else None,
                link_netnsid=raw.i32(IFLA["IFLA_LINK_NETNSID"]),
                addresses=addresses.get(index, []),
                vxlan=_vxlan(raw, info.get(IFLA_INFO_DATA), names) if kind == "vxlan" else None)


def _vxlan(raw: netlink.Message, data_span: tuple[int, int] | None, names: dict[int, str]) -> dict:
    """A VXLAN device's settings, as `ip -d link` shows them; remotes and flood come from its FDB."""
    data = netlink.attributes(raw.data, *data_span) if data_span else {}

    def value(name: str, unpack):
        span = data.get(VXLAN[name])
        return unpack(raw.data[span[0]:span[1]]) if span else None

    underlay = value("IFLA_VXLAN_LINK", lambda b: int.from_bytes(b[:4], "little"))
    return {"id": value("IFLA_VXLAN_ID", lambda b: int.from_bytes(b[:4], "little")),
            "dstport": value("IFLA_VXLAN_PORT", lambda b: int.from_bytes(b[:2], "big")),   # network order
            "local": value("IFLA_VXLAN_LOCAL", lambda b: socket.inet_ntop(socket.AF_INET, b[:4])),
            "dev": names.get(underlay) if underlay else None,
            "group": value("IFLA_VXLAN_GROUP", lambda b: socket.inet_ntop(socket.AF_INET, b[:4])),
            "learning": bool(value("IFLA_VXLAN_LEARNING", lambda b: b[0])),
            "remotes": [], "flood": []}


def _route(ns: str, raw: netlink.Message, names: dict[int, str]) -> Route | None:
    table = raw.u32(RTA["RTA_TABLE"]) or ROUTE.field(raw, "table")
    if table != MAIN_TABLE:
        return None
    dst = raw.address(RTA["RTA_DST"], socket.AF_INET)
    scope, proto, kind = (ROUTE.field(raw, field) for field in ("scope", "proto", "type"))
    return Route(ns=ns, dst=f"{dst}/{ROUTE.field(raw, 'dst_len')}" if dst else "default",
                 dev=names.get(raw.u32(RTA["RTA_OIF"])), gateway=raw.address(RTA["RTA_GATEWAY"], socket.AF_INET),
                 src=raw.address(RTA["RTA_PREFSRC"], socket.AF_INET), scope=SCOPES.get(scope, str(scope)),
                 proto=PROTOCOLS.get(proto, str(proto)),
                 table={MAIN_TABLE: "main", LOCAL_TABLE: "local"}.get(table, str(table)),
                 type=ROUTE_TYPES.get(kind, str(kind)))


def _neighbours(ns: str, rtnl: netlink.Socket, names: dict[int, str]) -> list[Neighbour]:
    found = []
    for raw in rtnl.dump(RTM_GETNEIGH, NEIGHBOUR, NEIGHBOUR.pack(family=socket.AF_INET)):
        state = NEIGHBOUR.field(raw, "state")
        if state == NUD_NOARP:
            continue
        found.append(Neighbour(ns, raw.address(NDA["NDA_DST"], socket.AF_INET), raw.mac(NDA["NDA_LLADDR"]),
                               names.get(NEIGHBOUR.field(raw, "ifindex"), "?"),
                               NEIGHBOUR_STATES.get(state, str(state))))
    return found


def _fdb(ns: str, rtnl: netlink.Socket, names: dict[int, str]) -> list[FdbEntry]:
    learned = []
    for raw in rtnl.dump(RTM_GETNEIGH, NEIGHBOUR, NEIGHBOUR.pack(family=socket.AF_BRIDGE)):
        state = NEIGHBOUR.field(raw, "state")
        dst = raw.address(NDA["NDA_DST"], socket.AF_INET) if raw.get(NDA["NDA_DST"]) is not None and \
            len(raw.get(NDA["NDA_DST"])) == 4 else None
        # The kernel lists the bridge's own and multicast addresses too: keep what it
        # learned, and a VXLAN device's entries (they say which host to send to).
        if (state & NUD_PERMANENT or NEIGHBOUR.field(raw, "flags") & NTF_SELF) and not dst:
            continue
        master = raw.u32(NDA["NDA_MASTER"])
        learned.append(FdbEntry(ns, raw.mac(NDA["NDA_LLADDR"]), names.get(NEIGHBOUR.field(raw, "ifindex"), "?"),
                                names.get(master) if master else None, dst, bool(state & NUD_PERMANENT)))
    return learned


def _sysctl(key: str) -> str:
    """A sysctl of the calling thread's namespace ("" where it does not exist). Read with
    os.open and os.read: a third of the CPU of open().read(), times 100 namespaces."""
    try:
        fd = os.open(str(sysctl_path(key)), os.O_RDONLY)
    except OSError:
        return ""
    try:
        return os.read(fd, 256).decode().strip()
    except OSError:
        return ""
    finally:
        os.close(fd)


def _has_tables() -> bool:
    """Whether this namespace has any nftables table (of any family) besides the trace's."""
    try:
        with netlink.Socket(NETLINK_NETFILTER) as nfnl:
            return any(raw.text(TABLE.attributes["NFTA_TABLE_NAME"]) not in HIDDEN_TABLES
                       for raw in nfnl.dump(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE, TABLE))
    except OSError:
        return False   # no nf_tables here


def _run(argv: list[str]) -> str:
    # A child forked from this thread is in this thread's network namespace.
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def _iptables_rules(ns: str) -> list[Rule]:
    rules, table = [], ""
    for line in _run(["iptables-save", "-c"]).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain, policy, counters = line[1:].split()
            if policy != "-":
                packets, size = counters.strip("[]").split(":")
                rules.append(Rule(ns, "ip", table, chain, f"policy {policy}", int(packets), int(size), "iptables"))
        elif line.startswith("["):
            counters, rule = line.split(" ", 1)
            packets, size = counters.strip("[]").split(":")
            chain = rule.split()[1]
            rules.append(Rule(ns, "ip", table, chain, rule, int(packets), int(size), "iptables"))
    return rules


_NFT_HANDLE = re.compile(r"^\s*(.*?) # handle (\d+)$")
_NFT_TABLE = re.compile(r"^table (\S+) (\S+) \{")


def _nft_rules(ns: str) -> list[Rule]:
    """Rules and chain policies of native nft tables, with their counters, from
    `nft -j list ruleset`; each rule's text as `nft list ruleset` prints it, found by its
    handle in `nft -a list ruleset` (the JSON has the rule only as expressions)."""
    try:
        ruleset = json.loads(_run(["nft", "-j", "list", "ruleset"]) or "{}").get("nftables", [])
    except ValueError:
        return []
    texts = _nft_rule_texts(_run(["nft", "-a", "list", "ruleset"]))
    chains: dict[tuple[str, str, str], list[Rule]] = {}   # in the order nft lists them
    for item in ruleset:
        if "chain" in item and item["chain"]["table"] not in HIDDEN_TABLES:
            chain = item["chain"]
            listed = chains.setdefault((chain["family"], chain["table"], chain["name"]), [])
            if "policy" in chain:
                listed.append(Rule(ns, chain["family"], chain["table"], chain["name"], f"policy {chain['policy']}",
                                   0, 0, "nft"))
        elif "rule" in item and item["rule"]["table"] not in HIDDEN_TABLES:
            rule = item["rule"]
            counter = next((e["counter"] for e in rule.get("expr", []) if isinstance(e, dict)
                            and isinstance(e.get("counter"), dict)), {})
            text = texts.get((rule["family"], rule["table"], rule["handle"]), f"(rule handle {rule['handle']})")
            chains.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(
                Rule(ns, rule["family"], rule["table"], rule["chain"], text,
                     counter.get("packets", 0), counter.get("bytes", 0), "nft"))
    return [rule for listed in chains.values() for rule in listed]


def _nft_rule_texts(listing: str) -> dict[tuple[str, str, int], str]:
    """(family, table, handle) -> the line nft prints for it. With -a, every rule is one
    line that ends in its handle, whatever spans several lines around it (sets, maps)."""
    texts, family, table = {}, "", ""
    for line in listing.splitlines():
        if match := _NFT_TABLE.match(line):
            family, table = match.group(1), match.group(2)
        elif match := _NFT_HANDLE.match(line):
            texts[(family, table, int(match.group(2)))] = match.group(1)
    return texts


def _connections(ns: str) -> list[Connection]:
    from pyroute2 import Conntrack
    found = []
    with Conntrack() as conntrack:
        for entry in conntrack.dump_entries():
            orig, reply = entry.tuple_orig, entry.tuple_reply
            found.append(Connection(
                ns, _protocol_name(orig.proto), orig.saddr, orig.daddr, orig.sport, orig.dport,
                reply.saddr, reply.daddr, reply.sport, reply.dport,
                _tcp_state(entry), _status(entry.status)))
    return found


def _status(bits: int) -> str:
    """The flags `conntrack -L` shows: [UNREPLIED] until a reply was seen, [ASSURED] after."""
    return "ASSURED" if bits & 0x4 else ("" if bits & 0x2 else "UNREPLIED")


def _protocol_name(number) -> str:
    return {1: "icmp", 6: "tcp", 17: "udp", 2: "igmp"}.get(number, str(number))


def _tcp_state(entry) -> str:
    return entry.protoinfo.state_name() if entry.protoinfo is not None else ""


def _socket_owners() -> dict[int, tuple[int, str]]:
    """socket inode -> (pid, command name), for every process of the lab host."""
    owners = {}
    for pid in process_ids():
        try:
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        owners.update((inode, (pid, command)) for inode in socket_inodes(pid))
    return owners


def _sockets(ns: str, owners: dict[int, tuple[int, str]]) -> list[Socket]:
    """Listening TCP and bound UDP sockets, as `ss -lntu` lists them."""
    found = []
    with netlink.Socket(NETLINK_SOCK_DIAG) as diag:
        for family in (socket.AF_INET, socket.AF_INET6):
            for protocol, state in (("tcp", SS_LISTEN), ("udp", SS_CLOSE)):   # what `ss -l` lists
                request = SOCKET_REQUEST.pack(
                    sdiag_family=family, idiag_states=1 << state,
                    sdiag_protocol=socket.IPPROTO_TCP if protocol == "tcp" else socket.IPPROTO_UDP)
                for raw in diag.dump(SOCK_DIAG_BY_FAMILY, SOCKET, request):
                    address = SOCKET.raw_field(raw, "idiag_src")[:4 if family == socket.AF_INET else 16]
                    owner = owners.get(SOCKET.field(raw, "idiag_inode"))
                    found.append(Socket(ns, protocol, socket.inet_ntop(family, address),
                                        SOCKET.field(raw, "idiag_sport"),
                                        owner[1] if owner else None, owner[0] if owner else None))
    return found


def _pair_veths(namespaces: dict[str, Namespace], paths: dict[str, str | None]) -> None:
    """Find each veth's other end: by ifindex, and by netns id where indexes repeat."""
    by_index: dict[int, list[Link]] = {}
    for ns in namespaces.values():
        for link in ns.links:
            if link.kind == "veth":
                by_index.setdefault(link.index, []).append(link)
    for ns in namespaces.values():
        for link in ns.links:
            if link.kind != "veth" or link.peer_index is None:
                continue
            candidates = [other for other in by_index.get(link.peer_index, [])
                          if other.peer_index == link.index and other is not link
                          and (other.ns == link.ns) == (link.link_netnsid is None)]
            if len(candidates) > 1:
                candidates = _same_netnsid(link, candidates, paths)
            if len(candidates) == 1:
                link.peer = candidates[0].key


def _same_netnsid(link: Link, candidates: list[Link], paths: dict[str, str | None]) -> list[Link]:
    """Ask the kernel which candidate's namespace has id `link.link_netnsid` in `link.ns`."""
    from pyroute2 import IPRoute

    def ask() -> list[Link]:
        with open(paths[link.ns] or "/proc/1/ns/net") as ns:
            setns(ns.fileno())
        matching = []
        with IPRoute() as ipr:
            for candidate in candidates:
                with open(paths[candidate.ns] or "/proc/1/ns/net") as target:
                    reply = ipr.get_netnsid(fd=target.fileno())
                if reply and reply.get("nsid") == link.link_netnsid:
                    matching.append(candidate)
        return matching

    return in_fresh_thread(ask, name="netnsid")
