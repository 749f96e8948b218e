"""Two hosts' firewalls side by side, chain by chain: what matches and what differs.

Made for "now let Docker do it": the rules a learner typed in one lab host next to the
rules real Docker wrote in another, and who listens on the published port (socat or
docker-proxy). Rules are compared as iptables-save prints them, so two rules match
when they say the same thing, however they were typed.
"""
from __future__ import annotations

import pandas as pd

from ..model.state import Namespace
from ..model.world import STUB_RESOLVER

BUILT_IN = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
TABLES = ("raw", "mangle", "nat", "filter")
SAME, DIFFERS = "same", "differs"


def _chains(namespace: Namespace) -> dict[tuple[str, str], list[str]]:
    """(table, chain) -> [the policy as "policy X" first, then each rule without "-A CHAIN"]."""
    chains: dict[tuple[str, str], list[str]] = {}
    for rule in namespace.rules:
        if rule.source != "iptables":
            continue
        text = rule.rule
        if text.startswith(f"-A {rule.chain} "):
            text = text[len(rule.chain) + 4:]
        chains.setdefault((rule.table, rule.chain), []).append(text)
    return chains


def _order(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    def rank(key: tuple[str, str]):
        table, chain = key
        return (TABLES.index(table) if table in TABLES else len(TABLES), table,
                BUILT_IN.index(chain) if chain in BUILT_IN else len(BUILT_IN))
    return sorted(dict.fromkeys(keys), key=rank)   # stable: first seen first, within a rank


def _pair(left: list[str], right: list[str]) -> list[tuple[str, str, str]]:
    """Rows (left, right, verdict): the right's order, the left's own rules after."""
    rows, unmatched = [], list(left)
    left_policy = next((r for r in left if r.startswith("policy ")), None)
    right_policy = next((r for r in right if r.startswith("policy ")), None)
    # A default policy on both sides says nothing; a DROP (or a difference) does.
    unmatched = [r for r in unmatched if r != left_policy]
    if (left_policy or right_policy) and {left_policy, right_policy} != {"policy ACCEPT"}:
        rows.append((left_policy or "", right_policy or "", SAME if left_policy == right_policy else DIFFERS))
    for rule in right:
        if rule == right_policy:
            continue
        if rule in unmatched:
            unmatched.remove(rule)
            rows.append((rule, rule, SAME))
        else:
            rows.append(("", rule, "only {right}"))
    rows += [(rule, "", "only {left}") for rule in unmatched]
    return rows


def _listeners(namespace: Namespace) -> dict[int, list[str]]:
    found: dict[int, set[str]] = {}
    for socket in namespace.sockets:
        if socket.protocol == "tcp" and socket.address != STUB_RESOLVER:
            found.setdefault(socket.port, set()).add(f"{socket.address}:{socket.port} {socket.process or '?'}")
    return {port: sorted(names) for port, names in found.items()}


def side_by_side(left: Namespace, right: Namespace, labels: tuple[str, str]) -> pd.DataFrame:
    """One row per rule (or policy, or listening port) of either host, paired where equal."""
    left_name, right_name = labels
    left_chains, right_chains = _chains(left), _chains(right)
    rows = []
    for table, chain in _order([*right_chains, *left_chains]):
        for mine, theirs, verdict in _pair(left_chains.get((table, chain), []), right_chains.get((table, chain), [])):
            rows.append({"table": table, "chain": chain, left_name: mine, right_name: theirs,
                         "": verdict.format(left=left_name, right=right_name)})
    left_ports, right_ports = _listeners(left), _listeners(right)
    for port in sorted(set(left_ports) | set(right_ports)):
        mine, theirs = "\n".join(left_ports.get(port, [])), "\n".join(right_ports.get(port, []))
        verdict = (SAME if mine == theirs else DIFFERS if mine and theirs
                   else f"only {left_name}" if mine else f"only {right_name}")
        rows.append({"table": "(process)", "chain": f"listens on tcp {port}",
                     left_name: mine, right_name: theirs, "": verdict})
    return pd.DataFrame(rows, columns=["table", "chain", left_name, right_name, ""])
