"""Two lab hosts' networks compared object by object: what one has that the other lacks.

Pure pandas over the tables (views/tables.py). Only what makes the network behave is
compared: names, kinds, states, masters, IPv4 addresses, routes and firewall rules — not
MAC addresses, interface indexes, counters, or IPv6 link-local addresses, which differ
between any two builds of the same network.
"""
from __future__ import annotations

import pandas as pd

COMPARED = {
    "links": ["ns", "ifname", "kind", "state", "mtu", "master"],
    "addrs": ["ns", "ifname", "address", "prefixlen"],
    "routes": ["ns", "dst", "gateway", "dev", "scope", "type"],
    "rules": ["ns", "table", "chain", "rule"],
}


def comparable(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["ns"].notna()]
    if kind == "addrs":
        frame = frame[frame["family"] == "inet"]
    if kind == "routes":
        frame = frame[~frame["dst"].astype(str).str.contains(":")]
    columns = COMPARED[kind]
    return frame[columns].astype(object).where(frame[columns].notna(), "").astype(str).drop_duplicates()


def differences(mine: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame],
                names: tuple[str, str] = ("yours", "reference")) -> pd.DataFrame:
    """One row per object that only one side has: kind, which side, and the object."""
    rows = []
    for kind in COMPARED:
        if kind not in mine or kind not in theirs:
            continue
        a, b = comparable(kind, mine[kind]), comparable(kind, theirs[kind])
        merged = a.merge(b, how="outer", indicator=True)
        for _, row in merged[merged["_merge"] != "both"].iterrows():
            side = names[0] if row["_merge"] == "left_only" else names[1]
            described = "  ".join(f"{c}={row[c]}" for c in COMPARED[kind] if row[c] not in ("", "nan", "<NA>", "None"))
            rows.append({"kind": kind, "only in": side, "object": described})
    return pd.DataFrame(rows, columns=["kind", "only in", "object"])
