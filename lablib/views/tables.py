"""Snapshots as pandas tables: one row per kernel object, columns named as iproute2 names them."""
from __future__ import annotations

import pandas as pd

from ..model.state import HOST, Snapshot

# kind -> the snapshot parts it needs (beyond links, which always come)
NEEDS = {"links": set(), "addrs": set(), "routes": {"routes"}, "neigh": {"neighbours"}, "fdb": {"fdb"},
         "rules": {"rules"}, "nat": {"rules"}, "conntrack": {"connections"}, "sockets": {"sockets"},
         "sysctls": {"sysctls"}}
KINDS = tuple(NEEDS)


def _peer(link) -> str | None:
    return f"{link.peer[1]} in {link.peer[0]}" if link.peer else None


def table(snapshot: Snapshot, kind: str) -> pd.DataFrame:
    """One kind of state from every namespace of `snapshot`, as a DataFrame."""
    rows: list[dict] = []
    for ns in snapshot.namespaces.values():
        if kind == "links":
            rows += [{"ns": ns.name, "ifname": l.name, "kind": l.kind, "state": l.state,
                      "operstate": l.operstate, "mtu": l.mtu, "mac": l.mac, "master": l.master,
                      "peer": _peer(l), "link-netnsid": l.link_netnsid} for l in ns.links]
        elif kind == "addrs":
            for l in ns.links:
                for address in l.addresses:
                    ip, prefix = address.split("/")
                    rows.append({"ns": ns.name, "ifname": l.name, "address": ip, "prefixlen": int(prefix),
                                 "family": "inet6" if ":" in ip else "inet",
                                 "scope": "link" if ip.startswith("fe80:") else "host" if l.kind == "loopback" else "global"})
        elif kind == "routes":
            rows += [{"ns": ns.name, "dst": r.dst, "gateway": r.gateway, "dev": r.dev, "proto": r.proto,
                      "scope": r.scope, "src": r.src, "type": r.type,
                      "connected": r.connected} for r in ns.routes]
        elif kind == "neigh":
            rows += [{"ns": ns.name, "address": n.address, "lladdr": n.mac, "dev": n.dev, "state": n.state}
                     for n in ns.neighbours]
        elif kind == "fdb":
            rows += [{"ns": ns.name, "bridge": f.bridge, "port": f.port, "mac": f.mac, "dst": f.dst,
                      "state": "permanent" if f.permanent else "learned"} for f in ns.fdb]
        elif kind in ("rules", "nat"):
            rows += [{"ns": ns.name, "family": r.family, "table": r.table, "chain": r.chain, "rule": r.rule,
                      "packets": r.packets, "bytes": r.bytes, "listed by": r.source}
                     for r in ns.rules if kind == "rules" or r.table == "nat"]
        elif kind == "conntrack":
            rows += [{"ns": ns.name, "protocol": c.protocol, "src": c.src, "sport": c.sport, "dst": c.dst,
                      "dport": c.dport, "reply src": c.reply_src, "reply dst": c.reply_dst,
                      "state": c.state, "status": c.status, "nat": c.nat} for c in ns.connections]
        elif kind == "sockets":
            rows += [{"ns": ns.name, "protocol": s.protocol, "address": s.address, "port": s.port,
                      "process": s.process, "pid": s.pid} for s in ns.sockets]
        elif kind == "sysctls":
            rows += [{"ns": ns.name, "sysctl": key, "value": value} for key, value in ns.sysctls.items()]
        else:
            raise ValueError(f"unknown table '{kind}'; choose one of: {', '.join(KINDS)}")
    columns = _columns(kind)
    if kind == "fdb" and any(row["dst"] for row in rows):
        columns += ["dst", "state"]   # a VXLAN device's entries: the host each MAC lives behind
    frame = pd.DataFrame(rows, columns=columns)
    if kind in SORTED_BY and not frame.empty:
        # The kernel lists these in no stable order: sort them, keeping namespaces in order.
        order = {name: i for i, name in enumerate(snapshot.namespaces)}
        frame = frame.assign(_ns=frame["ns"].map(order)).sort_values(["_ns", *SORTED_BY[kind]], kind="stable") \
            .drop(columns="_ns").reset_index(drop=True)
    for column in INTEGER_COLUMNS.intersection(frame.columns):
        if frame[column].dtype.kind == "f":
            frame[column] = frame[column].astype("Int64")   # a missing port is <NA>, not 80.0
    return frame


SORTED_BY = {"sockets": ["protocol", "port", "address"], "fdb": ["bridge", "port", "mac"],
             "neigh": ["dev", "address"], "conntrack": ["protocol", "src", "dst", "dport"]}
INTEGER_COLUMNS = {"mtu", "link-netnsid", "prefixlen", "packets", "bytes", "sport", "dport", "port", "pid"}


def _columns(kind: str) -> list[str]:
    """Column names, in order (an empty table still shows what it would hold)."""
    return {"links": ["ns", "ifname", "kind", "state", "operstate", "mtu", "mac", "master", "peer", "link-netnsid"],
            "addrs": ["ns", "ifname", "address", "prefixlen", "family", "scope"],
            "routes": ["ns", "dst", "gateway", "dev", "proto", "scope", "src", "type", "connected"],
            "neigh": ["ns", "address", "lladdr", "dev", "state"],
            "fdb": ["ns", "bridge", "port", "mac"],
            "rules": ["ns", "family", "table", "chain", "rule", "packets", "bytes", "listed by"],
            "nat": ["ns", "family", "table", "chain", "rule", "packets", "bytes", "listed by"],
            "conntrack": ["ns", "protocol", "src", "sport", "dst", "dport", "reply src", "reply dst", "state",
                          "status", "nat"],
            "sockets": ["ns", "protocol", "address", "port", "process", "pid"],
            "sysctls": ["ns", "sysctl", "value"]}[kind]


def comparison(snapshot: Snapshot) -> pd.DataFrame:
    """Each namespace's network stack side by side (seed 003 §2.2): what is its own."""
    columns = {}
    for ns in snapshot.namespaces.values():
        title = "lab host" if ns.name == HOST else ns.name
        columns[title] = {
            "interfaces": "\n".join(f"{l.name} ({l.kind}, {l.state})" for l in ns.links),
            "addresses": "\n".join(f"{a} on {l.name}" for l in ns.links for a in l.notable_addresses) or "(none)",
            "routes": "\n".join(f"{r.dst} " + (f"via {r.gateway}" if r.gateway else f"dev {r.dev}")
                                for r in ns.routes) or "(none)",
            "listening ports": "\n".join(sorted({f"{s.protocol} {s.address}:{s.port}"
                                                 + (f" ({s.process})" if s.process else "")
                                                 for s in ns.sockets})) or "(none)",
            "firewall rules": "\n".join(f"{r.table} {r.rule}" for r in ns.rules
                                        if not r.rule.startswith("policy")) or "(none)",
        }
    return pd.DataFrame(columns)
