"""Checked exercises: claims about the real state of a lab host, each answered ✅ or ❌
with a hint that says what is missing.

    from lablib import expect
    lab.check("veth pair",
              expect.interface("netns_dustin", "veth_ns_dustin", up=True, address="10.0.0.11/24"),
              expect.reaches("netns_dustin", "10.0.0.10"))

Claims read the kernel through the lab's agent (a snapshot, or a real ping/curl/dig
from inside the namespace) — never a remembered or declared state. Each result is also
recorded for the instructor (see progress.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..model.errors import CommandTimeout, WaitingForInput
from ..model.state import HOST, Snapshot
from ..views.diagnosis import (
    canonical_ns,
    command_prefix,
    describe_ns,
    diagnose,
    link_down_on_the_way,
)


@dataclass
class Verdict:
    ok: bool
    claim: str          # what was checked, in words
    hint: str = ""      # when not ok: what is missing, and how to get there


@dataclass
class CheckResult:
    """The answer to one exercise: every claim's verdict."""
    exercise: str
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def __bool__(self) -> bool:
        return self.passed

    def text(self) -> str:
        done = sum(v.ok for v in self.verdicts)
        head = (f"✅ {self.exercise}: all {len(self.verdicts)} checks pass" if self.passed
                else f"❌ {self.exercise}: {done} of {len(self.verdicts)} checks pass")
        lines = [head]
        for verdict in self.verdicts:
            lines.append(f"  {'✅' if verdict.ok else '❌'} {verdict.claim}")
            if not verdict.ok and verdict.hint:
                lines.append(f"     hint: {verdict.hint}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.text())

    def __repr__(self) -> str:
        return self.text()


def _probe(lab, command: str, ns: str, timeout: float):
    """Run a probe (ping, curl, getent) from `ns`; None when it got no answer in time."""
    try:
        return lab.sh(command, ns=None if ns == HOST else ns, check=False, timeout=timeout)
    except (CommandTimeout, WaitingForInput):
        return None


class Claim:
    """Something that should be true of the lab host; `judge` says whether it is."""
    needs: set[str] = set()      # snapshot kinds it reads

    def judge(self, lab, snapshot: Snapshot) -> Verdict:
        raise NotImplementedError


class namespace_exists(Claim):
    def __init__(self, ns: str):
        self.ns = ns

    def judge(self, lab, snapshot):
        ok = self.ns in snapshot.namespaces
        return Verdict(ok, f"network namespace {self.ns} exists", f"create it: ip netns add {self.ns}")


class interface(Claim):
    """An interface exists in a namespace, optionally up, with an address, on a bridge."""

    def __init__(self, ns: str | None, name: str, *, up: bool | None = None, address: str | None = None,
                 master: str | None = None, kind: str | None = None):
        self.ns, self.name, self.up, self.address, self.master, self.kind = canonical_ns(ns), name, up, address, master, kind

    def judge(self, lab, snapshot):
        wants = [w for w in (f"is a {self.kind}" if self.kind else None,
                             ("is UP" if self.up else "is DOWN") if self.up is not None else None,
                             f"has {self.address}" if self.address else None,
                             f"is a port of {self.master}" if self.master else None) if w]
        claim = f"{self.name} in {describe_ns(self.ns)} " + (", ".join(wants) if wants else "exists")
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet: ip netns add {self.ns}")
        link = namespace.link(self.name)
        if link is None:
            elsewhere = [ns for ns, other in snapshot.namespaces.items() if other.link(self.name)
                         and (ns, self.name) != (HOST, "eth0")]   # the uplink is not the one meant
            hint = (f"{self.name} is in {describe_ns(elsewhere[0])}; move it: ip link set {self.name} netns {self.ns}"
                    if elsewhere else f"there is no {self.name} in {describe_ns(self.ns)}; "
                    f"have: {', '.join(l.name for l in namespace.links)}")
            return Verdict(False, claim, hint)
        if self.kind and link.kind != self.kind:
            return Verdict(False, claim, f"{self.name} is a {link.kind}, not a {self.kind}")
        if self.up is not None and (link.state != "DOWN") != self.up:
            hint = (f"bring it up: {command_prefix(self.ns)}ip link set {self.name} up" if self.up
                    else f"take it down: {command_prefix(self.ns)}ip link set {self.name} down")
            return Verdict(False, claim, hint)
        if self.address and self.address not in link.addresses:
            have = ", ".join(link.notable_addresses) or "no IPv4 address"
            return Verdict(False, claim, f"{self.name} has {have}; add it: "
                                         f"{command_prefix(self.ns)}ip address add {self.address} dev {self.name}")
        if self.master and link.master != self.master:
            return Verdict(False, claim, f"{self.name} is {'on ' + link.master if link.master else 'on no bridge'}; "
                                         f"attach it: {command_prefix(self.ns)}ip link set {self.name} master {self.master}")
        return Verdict(True, claim)


class bridge_port(interface):
    """`port` is attached to `bridge` (both in the lab host unless `ns` says otherwise)."""

    def __init__(self, bridge: str, port: str, ns: str | None = None):
        super().__init__(ns, port, master=bridge)


class route(Claim):
    """A route to `dst` ("default" or a prefix) exists in a namespace, optionally via a gateway."""
    needs = {"routes"}

    def __init__(self, ns: str | None, dst: str, *, via: str | None = None, dev: str | None = None):
        self.ns, self.dst, self.via, self.dev = canonical_ns(ns), dst, via, dev

    def judge(self, lab, snapshot):
        claim = f"{describe_ns(self.ns)} has a route to {self.dst}" + (f" via {self.via}" if self.via else "") \
            + (f" dev {self.dev}" if self.dev else "")
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet: ip netns add {self.ns}")
        if self.dev and namespace.link(self.dev) is None:
            return Verdict(False, claim, f"there is no {self.dev} in {describe_ns(self.ns)} yet")
        matching = [r for r in namespace.routes if r.dst == self.dst]
        command = f"{command_prefix(self.ns)}ip route add {self.dst}" + (f" via {self.via}" if self.via else "") \
            + (f" dev {self.dev}" if self.dev and not self.via else "")
        if not matching:
            down = link_down_on_the_way(namespace, self.via, self.dev)
            if down is not None:   # the first cause, not the route it took away with it
                return Verdict(False, claim, f"{down.name} is {down.state} in {describe_ns(self.ns)}, and a route "
                                             f"needs its link up: {command_prefix(self.ns)}ip link set {down.name} up, "
                                             f"then {command}")
            return Verdict(False, claim, f"no route to {self.dst} there; add one: {command}")
        for r in matching:
            if (self.via is None or r.gateway == self.via) and (self.dev is None or r.dev == self.dev):
                return Verdict(True, claim)
        found = matching[0]
        return Verdict(False, claim, f"the route to {self.dst} goes "
                                     f"{'via ' + found.gateway if found.gateway else 'dev ' + str(found.dev)}; "
                                     f"replace it: {command.replace(' add ', ' replace ', 1)}")


class sysctl(Claim):
    needs = {"sysctls"}

    def __init__(self, key: str, value: str, ns: str | None = None):
        self.key, self.value, self.ns = key, str(value), canonical_ns(ns)

    def judge(self, lab, snapshot):
        claim = f"{self.key} = {self.value} in {describe_ns(self.ns)}"
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet")
        have = namespace.sysctls.get(self.key)
        if have is None:
            have = lab.sh(f"sysctl -n {self.key}", ns=None if self.ns == HOST else self.ns, check=False).stdout.strip()
        return Verdict(have == self.value, claim,
                       f"it is {have or 'not set'}; set it: {command_prefix(self.ns)}sysctl -w {self.key}={self.value}")


class rule(Claim):
    """A firewall rule whose iptables-save/nft text contains every one of `words`."""
    needs = {"rules"}

    def __init__(self, table: str, chain: str, *words: str, ns: str | None = None):
        self.table, self.chain, self.words, self.ns = table, chain, words, canonical_ns(ns)

    def judge(self, lab, snapshot):
        claim = f"a rule in {self.table} {self.chain} with {' '.join(self.words)}" + \
            ("" if self.ns == HOST else f" in {describe_ns(self.ns)}")
        namespace = snapshot.namespaces.get(self.ns)
        rules = [r for r in (namespace.rules if namespace else [])
                 if r.table == self.table and r.chain == self.chain and not r.rule.startswith("policy")]
        if any(all(_rule_has(r.rule, word) for word in self.words) for r in rules):
            return Verdict(True, claim)
        listing = f"{command_prefix(self.ns)}iptables -t {self.table} -S {self.chain}"
        if not rules:
            return Verdict(False, claim, f"{self.table} {self.chain} has no rules yet (see: {listing})")
        return Verdict(False, claim, f"none of its {len(rules)} rules has all of that (see: {listing})")


def _rule_has(text: str, word: str) -> bool:
    # iptables-save spells options long or short: accept both for the common ones.
    aliases = {"--in-interface": "-i", "--out-interface": "-o", "--jump": "-j", "--source": "-s",
               "--destination": "-d", "--protocol": "-p", "--append": "-A"}
    word = " ".join(aliases.get(part, part) for part in word.split())
    return word in text


class policy(Claim):
    """A built-in chain's policy (ACCEPT or DROP)."""
    needs = {"rules"}

    def __init__(self, table: str, chain: str, verdict: str, ns: str | None = None):
        self.table, self.chain, self.verdict, self.ns = table, chain, verdict.upper(), canonical_ns(ns)

    def judge(self, lab, snapshot):
        claim = f"the {self.table} {self.chain} policy is {self.verdict}"
        namespace = snapshot.namespaces.get(self.ns)
        found = next((r.rule.split()[1] for r in (namespace.rules if namespace else [])
                      if r.table == self.table and r.chain == self.chain and r.rule.startswith("policy")
                      and r.source == "iptables"), "ACCEPT")
        return Verdict(found == self.verdict, claim,
                       f"it is {found}; set it: {command_prefix(self.ns)}iptables -t {self.table} -P {self.chain} {self.verdict}")


class reaches(Claim):
    """From namespace `src`, a target answers: an IP (ping), "IP:PORT" (TCP) or a URL (HTTP)."""
    needs = {"routes", "sysctls", "rules"}

    def __init__(self, src: str | None, target: str, *, expect_text: str | None = None, timeout: float = 2):
        self.src, self.target, self.expect_text, self.timeout = canonical_ns(src), target, expect_text, timeout

    def _command(self) -> tuple[str, str]:
        t = int(max(1, self.timeout))
        if self.target.startswith(("http://", "https://")):
            return f"curl -sS -m {t} {self.target}", "HTTP"
        if re.fullmatch(r"[\d.]+:\d+", self.target):
            host, port = self.target.split(":")
            return f"timeout {t} bash -c 'exec 3<>/dev/tcp/{host}/{port}'", "TCP"
        return f"ping -c1 -W{t} {self.target}", "ping"

    def judge(self, lab, snapshot):
        command, how = self._command()
        claim = f"{describe_ns(self.src)} reaches {self.target} ({how})"
        if self.src not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.src} does not exist yet: ip netns add {self.src}")
        result = _probe(lab, command, self.src, self.timeout + 5)
        if result is None:
            return Verdict(False, claim, f"no answer within {self.timeout + 5:g} s (a name lookup that "
                                         "never returns? a packet dropped without a word?): trace it with lab.trace()")
        ok = result.ok
        if ok and self.expect_text and self.expect_text not in result.stdout:
            return Verdict(False, claim, f"it answered, but without {self.expect_text!r}")
        if ok:
            return Verdict(True, claim)
        return Verdict(False, claim, diagnose(snapshot, self.src, self._address(), result))

    def _address(self) -> str:
        target = self.target.split("://", 1)[-1]
        return target.split("/", 1)[0].split(":", 1)[0]


class not_reaches(reaches):
    """The opposite: the target must *not* answer (isolation, a firewall rule)."""

    def judge(self, lab, snapshot):
        verdict = super().judge(lab, snapshot)
        claim = verdict.claim.replace(" reaches ", " cannot reach ")
        return Verdict(not verdict.ok, claim, "it still answers: something lets it through")


class resolves(Claim):
    """In namespace `ns`, the name resolves (to `to`, if given) as programs resolve names."""

    def __init__(self, ns: str | None, name: str, to: str | None = None):
        self.ns, self.name, self.to = canonical_ns(ns), name, to

    def judge(self, lab, snapshot):
        claim = f"{describe_ns(self.ns)} resolves {self.name}" + (f" to {self.to}" if self.to else "")
        if self.ns not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet")
        result = _probe(lab, f"getent ahostsv4 {self.name}", self.ns, 12)
        if result is None:
            return Verdict(False, claim, "the lookup got no answer within 12 s: its nameserver is unreachable "
                                         "or drops the queries")
        addresses = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
        if result.ok and (self.to is None or self.to in addresses):
            return Verdict(True, claim)
        if result.ok:
            return Verdict(False, claim, f"it resolves to {', '.join(sorted(addresses))}")
        resolv = lab.sh(f"{command_prefix(self.ns)}cat /etc/resolv.conf", check=False).stdout
        servers = re.findall(r"^nameserver\s+(\S+)", resolv, re.M)
        hint = (f"its resolv.conf names {', '.join(servers) or 'no nameserver'}; "
                f"is that reachable from {describe_ns(self.ns)}? (per-namespace file: /etc/netns/{self.ns}/resolv.conf)")
        return Verdict(False, claim, hint)


def run(lab, exercise: str, claims: tuple[Claim, ...]) -> CheckResult:
    kinds = {"links"}.union(*(claim.needs for claim in claims)) if claims else {"links"}
    # A claim made from (or about) the outside world needs its namespaces read too.
    world = any(str(getattr(claim, "src", getattr(claim, "ns", ""))).startswith("world:") for claim in claims)
    snapshot = lab.snapshot(kinds=kinds, world=world)
    result = CheckResult(exercise, [claim.judge(lab, snapshot) for claim in claims])
    from ..course.progress import record
    record(exercise, result)
    return result
