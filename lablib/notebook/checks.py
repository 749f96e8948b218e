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

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..course.progress import ShownResult
from ..model.errors import CommandTimeout, LabError, WaitingForInput
from ..model.names import HOST, canonical_ns, is_world
from ..model.state import Snapshot
from ..views.diagnosis import (
    command_prefix,
    describe_ns,
    diagnose,
    link_down_on_the_way,
)
from ..views.rules import (
    BUILTIN_CHAINS,
    mismatches,
    parse_rule,
    parse_spec,
    render,
    shadowed_by,
    shared,
)

if TYPE_CHECKING:
    from .handle import Lab


@dataclass
class Verdict:
    ok: bool
    claim: str          # what was checked, in words
    hint: str = ""      # when not ok: what is missing, and how to get there
    seen: str = ""      # what the claim observed (shown even when ok: "refused by a rule ...")


@dataclass(repr=False)   # shown by ShownResult
class CheckResult(ShownResult):
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
            if verdict.seen:
                lines.append(f"     seen: {verdict.seen}")
            if not verdict.ok and verdict.hint:
                lines.append(f"     hint: {verdict.hint}")
        return "\n".join(lines)

    def data(self) -> dict:
        """The result as data (what `python -m lablib progress` reads from a notebook)."""
        return {"kind": "check", "exercise": self.exercise, "passed": self.passed,
                # Only what is the same on every run (nbval compares this data unsanitised).
                "claims": [{"claim": v.claim, "ok": v.ok} for v in self.verdicts]}


def _probe(lab: Lab, command: str, ns: str, timeout: float):
    """Run a probe (ping, curl, getent) from `ns`; None when it got no answer in time."""
    try:
        return lab.sh(command, ns=None if ns == HOST else ns, check=False, timeout=timeout)
    except (CommandTimeout, WaitingForInput):
        return None


class Claim:
    """Something that should be true of the lab host; `judge` says whether it is."""
    needs: set[str] = set()      # snapshot kinds it reads

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
        raise NotImplementedError


class namespace_exists(Claim):
    def __init__(self, ns: str):
        self.ns = ns

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
        ok = self.ns in snapshot.namespaces
        return Verdict(ok, f"network namespace {self.ns} exists", f"create it: ip netns add {self.ns}")


class interface(Claim):
    """An interface exists in a namespace, optionally up, with an address, on a bridge."""

    def __init__(self, ns: str | None, name: str, *, up: bool | None = None, address: str | None = None,
                 master: str | None = None, kind: str | None = None):
        self.ns, self.name, self.up, self.address, self.master, self.kind = canonical_ns(ns), name, up, address, master, kind

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
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
        stray = [a for a in link.notable_addresses if ":" not in a]
        if self.master and stray and not self.address:
            # A bridge's port only carries frames into the bridge: the address belongs on the bridge.
            return Verdict(False, claim, f"{self.name} is a port of {self.master} but still has {stray[0]} (its own "
                                         f"route competes with the bridge's); delete it: "
                                         f"{command_prefix(self.ns)}ip address delete {stray[0]} dev {self.name}")
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

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
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


    def _down_link(self, namespace):
        """A link that would give this route (it is `dev`, or has an address in `dst`), but is down."""
        for link in namespace.links:
            if link.state == "UP" or link.kind == "loopback":
                continue
            if self.dev == link.name and not self.via:
                return link
            for address in link.notable_addresses:
                network = ipaddress.ip_interface(address).network
                if self.dst != "default" and network == ipaddress.ip_network(self.dst, strict=False):
                    return link
                if self.via and ipaddress.ip_address(self.via) in network:
                    return link
        return None


class sysctl(Claim):
    needs = {"sysctls"}

    def __init__(self, key: str, value: str, ns: str | None = None):
        self.key, self.value, self.ns = key, str(value), canonical_ns(ns)

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
        claim = f"{self.key} = {self.value} in {describe_ns(self.ns)}"
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet")
        have = namespace.sysctls.get(self.key)
        if have is None:
            have = lab.sh(f"sysctl -n {self.key}", ns=None if self.ns == HOST else self.ns, check=False).stdout.strip()
        return Verdict(have == self.value, claim,
                       f"it is {have or 'not set'}; set it: {command_prefix(self.ns)}sysctl -w {self.key}={self.value}")


def _chain_rules(namespace, table: str, chain: str) -> list:
    """The iptables rules of one chain, in order, as (Rule, ParsedRule)."""
    found = []
    for r in (namespace.rules if namespace else []):
        if r.source == "iptables" and r.table == table and r.chain == chain and not r.rule.startswith("policy"):
            try:
                found.append((r, parse_rule(r.rule)))
            except ValueError:
                continue
    return found


def _iptables(ns: str, table: str) -> str:
    return f"{command_prefix(ns)}iptables" + ("" if table == "filter" else f" -t {table}")


class rule(Claim):
    """A firewall rule of `table` `chain` that is exactly what `words` say, and reached.

    Words are iptables options, long or short ("--in-interface bridge_home", "-o eth0",
    "! -o br-app", "-p tcp", "--dport 80", "-s 172.17.0.2", "--ctstate RELATED,ESTABLISHED",
    "-j DNAT", "--to-destination 172.17.0.2:80"); a bare target ("REJECT") or address
    ("192.0.2.10": the rule's -s or -d) is read as such. Every option named must be in
    the rule, with the same negation and value (addresses normalised: 172.17.0.2 is
    172.17.0.2/32; a port without -p means TCP); an option not named must not narrow the
    rule (-p udp is not a rule for all traffic) — unless the claim is bare words only
    ("192.0.2.10", "DNAT"), which names only those. `broader=True` also accepts a rule that
    matches more than named (a /16 for a /32). The rule must be reachable: not after a
    rule that decides its packets first (DOCKER-USER's RETURN, a DROP), and in a chain
    something jumps to.
    """
    needs = {"rules"}

    def __init__(self, table: str, chain: str, *words: str, ns: str | None = None, broader: bool = False):
        self.table, self.chain, self.words, self.ns = table, chain, words, canonical_ns(ns)
        self.broader = broader
        self.spec = parse_spec(words)

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
        claim = f"a rule in {self.table} {self.chain} with {' '.join(self.words)}" + \
            ("" if self.ns == HOST else f" in {describe_ns(self.ns)}")
        namespace = snapshot.namespaces.get(self.ns)
        if namespace is None:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet")
        rules = _chain_rules(namespace, self.table, self.chain)
        iptables = _iptables(self.ns, self.table)
        add = f"{iptables} -A {self.chain} {render(self.spec)}"
        if not rules:
            return Verdict(False, claim, f"{self.table} {self.chain} has no rules yet; add it: {add}")
        parsed = [p for _, p in rules]
        problems = [mismatches(self.spec, p, broader=self.broader) for p in parsed]
        for index, found in enumerate(problems):
            if found:
                continue
            blocker = shadowed_by(parsed, index)
            if blocker is not None:
                return Verdict(False, claim, f"your rule `{parsed[index]}` comes after `{blocker}`, which decides "
                                             "its packets first, so it is never reached; put it first: "
                                             f"{iptables} -D {self.chain} {_after_chain(parsed[index])} && "
                                             f"{iptables} -I {self.chain} {_after_chain(parsed[index])}")
            if self.chain not in BUILTIN_CHAINS and not any(
                    p.target == self.chain for other in namespace.rules if other.table == self.table
                    and other.source == "iptables" and not other.rule.startswith("policy")
                    for p in [_safe_parse(other.rule)] if p):
                return Verdict(False, claim, f"no rule jumps to {self.chain}, so its rules are never reached")
            return Verdict(True, claim)
        # The nearest miss: the rule with one difference, the likeliest slip first (a
        # negation, a narrowing, a name no interface has, a typo'd value).
        names = {link.name for link in namespace.links}
        # A rule that shares no named condition and has conditions of its own is another
        # rule (Docker's MASQUERADE), not a slip in this one.
        named = set(self.spec.matches) | {"protocol"}

        def kin(rule) -> bool:
            exact = shared(self.spec, rule) - (rule.target is not None and rule.target == self.spec.target)
            return exact > 0 or not self.spec.matches or set(rule.matches) <= named
        near = [(-shared(self.spec, parsed[i]), _slip(problems[i][0], names), i)
                for i in range(len(parsed)) if len(problems[i]) == 1 and kin(parsed[i])]
        if near:
            _, weight, best = min(near)
            rule_text = parsed[best]
            if weight < 1:
                return Verdict(False, claim, f"the nearest rule, `{rule_text}`: {problems[best][0]}. Replace it: "
                                             f"{iptables} -D {self.chain} {_after_chain(rule_text)} && {add}")
            return Verdict(False, claim, f"the nearest rule, `{rule_text}`: {problems[best][0]}; add it: {add}")
        return Verdict(False, claim, f"none of its {len(rules)} rules is that (see: {iptables} -S {self.chain}); "
                                     f"add it: {add}")


def _slip(problem: str, interfaces: set[str]) -> float:
    """How likely a difference is a slip in the rule meant (lower: likelier)."""
    if "the opposite of" in problem:
        return 0.5
    if problem.startswith("it also requires"):
        return 0.6
    found = re.match(r"it has (?:! )?-[io] (\S+), not", problem)
    if found:
        return 1.0 if found.group(1) in interfaces else 0.7
    if problem.startswith("it has no"):
        return 0.9
    return 0.8


def _safe_parse(text: str):
    try:
        return parse_rule(text)
    except ValueError:
        return None


def _after_chain(parsed) -> str:
    """A rule's words after `-A CHAIN` (what -D and -I take)."""
    words = parsed.text.split()
    return " ".join(words[2:]) if words[:1] == ["-A"] else parsed.text


class policy(Claim):
    """A built-in chain's policy (ACCEPT or DROP) — and, for DROP, that it still decides:
    no reachable rule of the chain accepts every packet before the policy is reached."""
    needs = {"rules"}

    def __init__(self, table: str, chain: str, verdict: str, ns: str | None = None):
        self.table, self.chain, self.verdict, self.ns = table, chain, verdict.upper(), canonical_ns(ns)

    def judge(self, lab: Lab, snapshot: Snapshot) -> Verdict:
        claim = f"the {self.table} {self.chain} policy is {self.verdict}"
        namespace = snapshot.namespaces.get(self.ns)
        found = next((r.rule.split()[1] for r in (namespace.rules if namespace else [])
                      if r.table == self.table and r.chain == self.chain and r.rule.startswith("policy")
                      and r.source == "iptables"), "ACCEPT")
        iptables = _iptables(self.ns, self.table)
        if found != self.verdict:
            return Verdict(False, claim, f"it is {found}; set it back: {iptables} -P {self.chain} {self.verdict}"
                           + (" — and accept only what the exercise asks, with rules" if self.verdict == "DROP" else ""))
        if self.verdict != "ACCEPT":
            parsed = [p for _, p in _chain_rules(namespace, self.table, self.chain)]
            for index, p in enumerate(parsed):
                if p.target == "ACCEPT" and p.unconditional and shadowed_by(parsed, index) is None:
                    return Verdict(False, claim, f"it is {found}, but `{p}` accepts every packet before the policy "
                                                 f"is reached, so the policy protects nothing; delete it: "
                                                 f"{iptables} -D {self.chain} {_after_chain(p)}")
        return Verdict(True, claim)


class reaches(Claim):
    """From namespace `src`, a target answers: an IP (ping), "IP:PORT" (TCP) or a URL (HTTP)."""
    needs = {"routes", "sysctls", "rules"}

    def __init__(self, src: str | None, target: str, *, expect_text: str | None = None, timeout: float = 2,
                 size: int | None = None):
        self.src, self.target, self.expect_text, self.timeout = canonical_ns(src), target, expect_text, timeout
        self.size = size     # a ping's payload (ping -s): 1472 makes a full 1500-byte packet

    def _command(self) -> tuple[str, str]:
        t = int(max(1, self.timeout))
        if self.target.startswith(("http://", "https://")):
            return f"curl -sS -m {t} {self.target}", "HTTP"
        if re.fullmatch(r"[\d.]+:\d+", self.target):
            host, port = self.target.split(":")
            return f"timeout {t} bash -c 'exec 3<>/dev/tcp/{host}/{port}'", "TCP"
        if self.size:
            return f"ping -c1 -W{t} -s {self.size} {self.target}", f"ping of {self.size + 28} bytes"
        return f"ping -c1 -W{t} {self.target}", "ping"

    def _claim(self) -> str:
        return f"{describe_ns(self.src)} reaches {self.target} ({self._command()[1]})"

    def probe(self, lab, snapshot):
        """Run the probe; (result or None when it hung, counters of dropping rules moved)."""
        world = is_world(self.src)
        before = _drop_counters(lab.snapshot(kinds={"rules"}, world=world))
        result = _probe(lab, self._command()[0], self.src, self.timeout + 5)
        after = _drop_counters(lab.snapshot(kinds={"rules"}, world=world))
        if result is not None and not result.ok and "Couldn't connect to server" in result.stderr:
            # curl no longer says why; a bare connect says "Connection refused" or "No route to host".
            from urllib.parse import urlsplit
            url = urlsplit(self.target)
            port = url.port or (443 if url.scheme == "https" else 80)
            why = _probe(lab, f"timeout {int(max(1, self.timeout))} bash -c 'exec 3<>/dev/tcp/{url.hostname}/{port}'",
                         self.src, self.timeout + 5)
            if why is not None and not why.ok and why.stderr.strip():
                result.stderr += "\n" + why.stderr
        moved = [key for key, count in after.items() if count > before.get(key, count)]
        return result, moved

    def judge(self, lab, snapshot):
        claim = self._claim()
        if self.src not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.src} does not exist yet: ip netns add {self.src}")
        result, moved = self.probe(lab, snapshot)
        ok = result is not None and result.ok
        if ok and self.expect_text and self.expect_text not in result.stdout:
            return Verdict(False, claim, f"it answered, but without {self.expect_text!r}")
        if ok:
            return Verdict(True, claim)
        reason, why = why_not(snapshot, self.src, self._address(), result, moved)
        if result is None and reason == "no-answer":
            why = (f"no answer within {self.timeout + 5:g} s (a name lookup that never returns? a packet dropped "
                   "without a word?): trace it with lab.trace()")
        return Verdict(False, claim, why)

    def _address(self) -> str:
        target = self.target.split("://", 1)[-1]
        return target.split("/", 1)[0].split(":", 1)[0]


# Why a probe got no answer, in words a claim can require: not_reaches(..., because="rule").
REASONS = {"rule": "refused by a firewall rule", "nothing-listens": "nothing listens there",
           "lo-down": "lo is down", "no-route": "no route", "link-down": "a link on the way is down",
           "unresolved": "the name does not resolve", "no-answer": "no answer, and no rule counted it"}


def _drop_counters(snapshot) -> dict:
    """Packet counters of every DROP/REJECT rule and DROP policy, by (ns, table, chain, rule)."""
    counters = {}
    for name, namespace in snapshot.namespaces.items():
        for r in namespace.rules:
            if r.source != "iptables":
                continue
            words = r.rule.split()
            if r.rule.startswith("policy DROP") or ("-j" in words and words[words.index("-j") + 1:][:1]
                                                   in (["DROP"], ["REJECT"])):
                counters[(name, r.table, r.chain, r.rule)] = r.packets
    return counters


def why_not(snapshot, src: str, address: str, result, moved: list) -> tuple[str, str]:
    """(reason, words) for a probe that got no answer: the first cause, with the fix."""
    if moved:
        ns, table, chain, text = moved[0]
        where = describe_ns(ns)
        what = f"the {chain} policy DROP" if text.startswith("policy") else f"`{text}`"
        return "rule", f"refused by a rule: {what} in {table} of {where} counted the packet"
    output = "" if result is None else result.stderr + result.stdout
    namespace = snapshot.namespaces[src]
    lo = namespace.link("lo")
    own = {ipaddress.ip_interface(a).ip for link in namespace.links for a in link.notable_addresses}
    try:
        target = ipaddress.ip_address(address)
    except ValueError:
        return "unresolved", f"{address} could not be resolved there: {output.strip()[-120:]}"
    if lo is not None and lo.state == "DOWN" and (target.is_loopback or target in own):
        return "lo-down", f"lo is DOWN in {describe_ns(src)}: {command_prefix(src)}ip link set lo up"
    if "Connection refused" in output or "Port Unreachable" in output:
        return "nothing-listens", f"{address} answered, but nothing listens on that port there (connection refused)"
    if "Network is unreachable" in output or "No route to host" in output:
        words = diagnose(snapshot, src, address, result)
        return ("link-down" if " is DOWN" in words else "no-route"), words
    words = diagnose(snapshot, src, address, result)
    if " is DOWN" in words or " is NO-CARRIER" in words:
        return "link-down", words
    if "no route" in words:
        return "no-route", words
    return "no-answer", words


class not_reaches(reaches):
    """The opposite: the target must *not* answer (isolation, a firewall rule). It says
    which it saw; `because` requires one: "rule" (a DROP/REJECT rule or a DROP policy
    counted the probe), "nothing-listens", "lo-down", "no-route", "link-down"."""

    def __init__(self, src: str | None, target: str, *, because: str | None = None, **options):
        super().__init__(src, target, **options)
        if because is not None and because not in REASONS:
            raise ValueError(f"because= must be one of {', '.join(REASONS)}")
        self.because = because

    def judge(self, lab, snapshot):
        claim = self._claim().replace(" reaches ", " cannot reach ")
        if self.because:
            claim += f", {REASONS[self.because]}"
        if self.src not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.src} does not exist yet: ip netns add {self.src}")
        result, moved = self.probe(lab, snapshot)
        if result is not None and result.ok:
            return Verdict(False, claim, "it still answers: something lets it through")
        reason, words = why_not(snapshot, self.src, self._address(), result, moved)
        if self.because and reason != self.because:
            return Verdict(False, claim, f"it is not reached, but not {REASONS[self.because]}: {words}",
                           seen=REASONS[reason])
        return Verdict(True, claim, seen=words.split(":", 1)[0] if reason != "rule" else words)


class closed(not_reaches):
    """A port that must stay closed to `src` because a firewall rule or a DROP policy
    refuses it (not merely because nothing listens): not_reaches(..., because="rule")."""

    def __init__(self, src: str | None, target: str, **options):
        super().__init__(src, target, because="rule", **options)


def _read_resolv_conf(lab, ns: str) -> str:
    result = lab.sh("cat /etc/resolv.conf", ns=None if ns == HOST else ns, check=False)
    return result.stdout if result.ok else ""


class vxlan(Claim):
    """A VXLAN device in `ns` with this VNI and UDP port, a port of `master`, up, that
    floods broadcasts (ARP) to each of `remotes` — its all-zeros FDB entries, as
    `bridge fdb append 00:00:00:00:00:00 dev NAME dst HOST` makes them."""

    def __init__(self, ns: str, name: str = "vxlan0", *, vni: int, dstport: int = 4789,
                 master: str | None = None, remotes: list[str] | tuple[str, ...] = ()):
        self.ns, self.name, self.vni, self.dstport = canonical_ns(ns), name, vni, dstport
        self.master, self.remotes = master, list(remotes)

    def judge(self, lab, snapshot):
        claim = f"{self.name} in {describe_ns(self.ns)} is VXLAN {self.vni} on UDP {self.dstport}" + \
            (f", a port of {self.master}" if self.master else "") + \
            (f", flooding to {', '.join(self.remotes)}" if self.remotes else "")
        run = command_prefix(self.ns)
        namespace = snapshot.namespaces.get(self.ns)
        link = namespace.link(self.name) if namespace else None
        if link is None or link.vxlan is None:
            return Verdict(False, claim, f"there is no VXLAN device {self.name} there: {run}ip link add {self.name} "
                                         f"type vxlan id {self.vni} dstport {self.dstport} dev eth0")
        have = link.vxlan
        if (have["id"], have["dstport"]) != (self.vni, self.dstport):
            return Verdict(False, claim, f"it is VXLAN {have['id']} on UDP {have['dstport']} "
                                         f"({run}ip -d link show {self.name}); neither can be changed in place: "
                                         "delete it and add it again")
        if self.master and link.master != self.master:
            return Verdict(False, claim, f"it is {'on ' + link.master if link.master else 'on no bridge'}: "
                                         f"{run}ip link set {self.name} master {self.master}")
        if link.state == "DOWN":
            return Verdict(False, claim, f"it is DOWN: {run}ip link set {self.name} up")
        flooding = set(have.get("flood", []))
        missing = [remote for remote in self.remotes if remote not in flooding]
        if missing:
            return Verdict(False, claim, f"broadcasts (ARP) go to {', '.join(sorted(flooding)) or 'no host'} "
                                         f"({run}bridge fdb show dev {self.name}); missing: {', '.join(missing)}")
        return Verdict(True, claim)


class encapsulated(Claim):
    """A ping from `src` to `target` gets its answer, and the echo request crossed the
    underlay wrapped in a tunnel (VXLAN to UDP `port`, with VNI `vni` if given) — read
    from a real trace of a real ping, not from the configuration."""

    def __init__(self, src: str, target: str, *, vni: int | None = None, port: int = 4789, size: int | None = None,
                 timeout: float = 2):
        self.src, self.target, self.vni, self.port, self.timeout = canonical_ns(src), target, vni, port, timeout
        self.size = size

    def judge(self, lab, snapshot):
        wrapped_in = f"VXLAN {self.vni}" if self.vni is not None else "VXLAN"
        what = f"{self.size + 28}-byte ping" if self.size else "ping"
        claim = f"{describe_ns(self.src)}'s {what} to {self.target} crosses the underlay wrapped in {wrapped_in}"
        if self.src not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.src} does not exist yet: ip netns add {self.src}")
        # A neighbour entry left INCOMPLETE or FAILED by tries before the fix would fail the
        # probe at once: forget the target's entry (never a permanent one), so the probe
        # asks afresh and sees the network as it is now.
        lab.sh(f"ip neigh flush to {self.target}", ns=self.src, check=False)
        with lab.trace(f"icmp or arp or udp port {self.port}", netfilter=False) as trace:
            size = f" -s {self.size}" if self.size else ""
            result = _probe(lab, f"ping -c1 -W{int(max(1, self.timeout))}{size} {self.target}", self.src,
                            self.timeout + 5)
        requests = [p for p in trace.packets if p.first.ns == self.src and p.first.protocol == "icmp"
                    and "echo request" in p.summary and p.first.dst == self.target]
        arp = [p for p in trace.packets if p.first.protocol == "arp" and p.first.dst == self.target
               and any(h.ns == self.src for h in p.hops)]
        answered = result is not None and result.ok
        if not requests:
            if arp and not any(h.encapsulated for p in arp for h in p.hops):
                return Verdict(False, claim, f"{self.src} asked who has {self.target} (ARP), and the question "
                                             "never crossed to another host: where may a VXLAN device send a broadcast? "
                                             "(bridge fdb show dev vxlan0)")
            if arp:
                return Verdict(False, claim, f"the ARP question for {self.target} crossed the underlay, but no "
                                             "answer came back: does the far side accept it (same VNI, same port)?")
            neighbour = lab.sh(f"ip neigh show {self.target}", ns=self.src, check=False).stdout.split()
            if neighbour and neighbour[-1] in ("FAILED", "INCOMPLETE"):
                return Verdict(False, claim, f"{self.src} could not learn {self.target}'s MAC (ip neigh: "
                                             f"{neighbour[-1]}): its ARP questions got no answer — where do they go?")
            return Verdict(False, claim, f"no echo request for {self.target} left {self.src}: has it an address "
                                         "on that subnet, and a link that is up?")
        request = requests[0]
        wrapped = [hop for hop in request.hops if hop.encapsulated]
        if not wrapped:
            underlay = next((h for h in request.hops if h.interface == "eth0" and h.ns != self.src
                             and h.ns in snapshot.namespaces and h.ns not in snapshot.hosted()), None)
            if answered:
                where = f" (seen on {underlay.ns}'s {underlay.interface} as {underlay.src} → {underlay.dst})" \
                    if underlay else ""
                return Verdict(False, claim, f"it got an answer, but crossed unwrapped{where}: routed, not an overlay")
            return Verdict(False, claim, f"it was never wrapped in a tunnel; {request.fate}")
        vnis = sorted({hop.vni for hop in wrapped})
        outer = wrapped[0]
        if self.vni is not None and vnis != [self.vni]:
            return Verdict(False, claim, f"it was wrapped with VNI {', '.join(map(str, vnis))}, not {self.vni}")
        if not answered:
            return Verdict(False, claim, f"it crossed wrapped in VXLAN {vnis[0]} ({outer.outer_src} → "
                                         f"{outer.outer_dst}) but got no answer; {request.fate}: does the far "
                                         "host's VXLAN device take it (its VNI, its port), and does the answer fit?")
        return Verdict(True, claim.replace("crosses the underlay", f"crosses the underlay ({outer.outer_src} → "
                                                                       f"{outer.outer_dst})"))


class resolves(Claim):
    """In namespace `ns`, the name resolves (to `to`, if given).

    In a namespace (a container), by a real DNS query to the nameserver its own
    resolv.conf names (/etc/netns/NS/resolv.conf, as `ip netns exec` sees it), or by the
    namespace's own hosts file /etc/netns/NS/hosts — not by the lab host's /etc/hosts,
    which no container shares. In the lab host, as programs resolve (getent: /etc/hosts,
    then DNS). `dns=True` asks DNS only, `dns=False` asks getent, wherever.
    """

    def __init__(self, ns: str | None, name: str, to: str | None = None, *, dns: bool | None = None):
        self.ns, self.name, self.to = canonical_ns(ns), name, to
        self.dns = (self.ns != HOST) if dns is None else dns

    def judge(self, lab, snapshot):
        claim = f"{describe_ns(self.ns)} resolves {self.name}" + (f" to {self.to}" if self.to else "") \
            + (" (DNS)" if self.dns else "")
        if self.ns not in snapshot.namespaces:
            return Verdict(False, claim, f"namespace {self.ns} does not exist yet")
        return self._by_dns(lab, claim) if self.dns else self._by_getent(lab, claim)

    def _by_getent(self, lab, claim):
        result = _probe(lab, f"getent ahostsv4 {self.name}", self.ns, 12)
        if result is None:
            return Verdict(False, claim, "the lookup got no answer within 12 s: its nameserver is unreachable "
                                         "or drops the queries")
        addresses = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
        if result.ok and (self.to is None or self.to in addresses):
            return Verdict(True, claim)
        if result.ok:
            return Verdict(False, claim, f"it resolves to {', '.join(sorted(addresses))}")
        servers = re.findall(r"^nameserver\s+(\S+)", _read_resolv_conf(lab, self.ns), re.M)
        hint = (f"its resolv.conf names {', '.join(servers) or 'no nameserver'}; "
                f"is that reachable from {describe_ns(self.ns)}? (per-namespace file: /etc/netns/{self.ns}/resolv.conf)")
        return Verdict(False, claim, hint)

    def _own_hosts(self, lab) -> set[str]:
        if self.ns == HOST:
            return set()
        text = lab.sh(f"cat /etc/netns/{self.ns}/hosts 2>/dev/null", check=False).stdout
        return {line.split()[0] for line in text.splitlines()
                if line.strip() and not line.startswith("#") and self.name in line.split()[1:]}

    def _by_dns(self, lab, claim):
        own = self._own_hosts(lab)
        if own and (self.to is None or self.to in own):
            return Verdict(True, claim, seen=f"from {describe_ns(self.ns)}'s own hosts file /etc/netns/{self.ns}/hosts")
        where = f"/etc/netns/{self.ns}/resolv.conf" if self.ns != HOST else "/etc/resolv.conf"
        hosts_file = "" if self.ns == HOST else \
            lab.sh(f"grep -w {shlex.quote(self.name)} /etc/hosts", check=False).stdout.strip()
        not_dns = (f"; the lab host's /etc/hosts names {self.name} ({hosts_file.splitlines()[0]}), but that is not "
                   "DNS and no container shares it: delete that line") if hosts_file else ""
        if self.ns != HOST and not lab.sh(f"test -f {where}", check=False).ok:
            # Docker writes each container a resolv.conf of its own; without one, `ip netns
            # exec` shows the namespace the lab host's file.
            return Verdict(False, claim, f"{describe_ns(self.ns)} has no resolv.conf of its own, so it reads the lab "
                                         f"host's /etc/resolv.conf; write one: mkdir -p /etc/netns/{self.ns} && "
                                         f"echo 'nameserver ...' > {where}{not_dns}")
        servers = re.findall(r"^nameserver\s+(\S+)", _read_resolv_conf(lab, self.ns), re.M)
        if not servers:
            return Verdict(False, claim, f"its resolv.conf names no nameserver: write one into {where}")
        server = servers[0]
        result = _probe(lab, f"dig +short +time=2 +tries=1 @{server} {self.name} A", self.ns, 10)
        answers = [] if result is None else [line for line in result.stdout.split()
                                              if re.fullmatch(r"[\d.]+", line)]
        if answers and (self.to is None or self.to in answers):
            return Verdict(True, claim, seen=f"nameserver {server} answered {', '.join(answers)}")
        if answers:
            return Verdict(False, claim, f"nameserver {server} answers {', '.join(answers)}")
        if hosts_file:
            return Verdict(False, claim, f"the lab host's /etc/hosts names {self.name} ({hosts_file.splitlines()[0]}), "
                                         "but that is not DNS and no container shares it; delete that line, and give "
                                         f"{describe_ns(self.ns)} a nameserver that answers, in {where}")
        if result is None or "timed out" in result.stdout or "no servers could be reached" in result.stdout:
            return Verdict(False, claim, f"its resolv.conf ({where}) names nameserver {server}, which does not "
                                         f"answer from {describe_ns(self.ns)}: is that the right server, and "
                                         "reachable (ping it, or trace udp port 53)?")
        status = re.search(r"status: (\w+)", result.stdout)
        return Verdict(False, claim, f"nameserver {server} (from {where}) has no address for {self.name}"
                                     + (f" ({status.group(1)})" if status else ""))


class mac(Claim):
    """An interface has a given MAC address (02:42:ac:11:00:04, Docker's for 172.17.0.4)."""

    def __init__(self, ns: str | None, name: str, address: str):
        self.ns, self.name, self.address = canonical_ns(ns), name, address.lower()

    def judge(self, lab, snapshot):
        claim = f"{self.name} in {describe_ns(self.ns)} has MAC {self.address}"
        link = snapshot.link(self.ns, self.name)
        if link is None:
            return Verdict(False, claim, f"there is no {self.name} in {describe_ns(self.ns)}")
        if link.mac.lower() == self.address:
            return Verdict(True, claim)
        return Verdict(False, claim, f"its MAC is {link.mac}; set it: "
                                     f"{command_prefix(self.ns)}ip link set {self.name} address {self.address}")


class fdb(Claim):
    """Bridge `bridge` has learned (or was given) MAC `address` on port `port`."""
    needs = {"fdb"}

    def __init__(self, bridge: str, address: str, port: str | None = None, ns: str | None = None):
        self.bridge, self.address, self.port, self.ns = bridge, address.lower(), port, canonical_ns(ns)

    def judge(self, lab, snapshot):
        claim = f"{self.bridge} knows {self.address}" + (f" on port {self.port}" if self.port else "")
        namespace = snapshot.namespaces.get(self.ns)
        entries = [e for e in (namespace.fdb if namespace else [])
                   if e.bridge == self.bridge and e.mac.lower() == self.address]
        if any(self.port is None or e.port == self.port for e in entries):
            return Verdict(True, claim)
        if entries:
            return Verdict(False, claim, f"{self.bridge} has {self.address} on {entries[0].port}, not {self.port}")
        return Verdict(False, claim, f"{self.bridge} has not seen {self.address}: is that interface's MAC right "
                                     f"(ip link), and has it sent anything yet (ping from it)? "
                                     f"See: bridge fdb show br {self.bridge}")


class neighbour(Claim):
    """`ns`'s ARP table maps `address` to `mac` (or, with mac=None, has no wrong entry:
    no PERMANENT entry and no entry with another MAC than the one the owner has)."""
    needs = {"neighbours"}

    def __init__(self, ns: str | None, address: str, mac: str | None = None):
        self.ns, self.address, self.mac = canonical_ns(ns), address, mac.lower() if mac else None

    def judge(self, lab, snapshot):
        claim = f"{describe_ns(self.ns)}'s ARP entry for {self.address} is " + (self.mac or "right or absent")
        namespace = snapshot.namespaces.get(self.ns)
        entries = [n for n in (namespace.neighbours if namespace else []) if n.address == self.address]
        owner = next((link.mac.lower() for link in snapshot.links()
                      if any(a.split("/")[0] == self.address for a in link.addresses)), None)
        want = self.mac or owner
        bad = [n for n in entries if n.mac and want and n.mac.lower() != want]
        if bad:
            return Verdict(False, claim, f"it says {self.address} is at {bad[0].mac} ({bad[0].state}), but "
                                         f"{self.address} is at {want}; delete it: "
                                         f"{command_prefix(self.ns)}ip neigh del {self.address} dev {bad[0].dev}")
        if self.mac and not entries:
            return Verdict(False, claim, f"there is no entry for {self.address}; ping it first")
        return Verdict(True, claim)


class fast(Claim):
    """From `src`, data reaches `target` at `min_mbit` Mbit/s or more (a one-second iperf3
    against a server started in `server`, "NS" or "NS:PORT"), and, with `max_latency_us`,
    a request/response round trip takes no longer than that."""

    def __init__(self, src: str | None, target: str, *, server: str, min_mbit: float = 500.0,
                 max_latency_us: float | None = None, seconds: float = 1.0):
        self.src, self.target, self.server = canonical_ns(src), target, server
        self.min_mbit, self.max_latency_us, self.seconds = min_mbit, max_latency_us, seconds

    def _claim(self) -> str:
        latency = f" with round trips under {self.max_latency_us:g} µs" if self.max_latency_us else ""
        return f"{describe_ns(self.src)} sends to {self.target} at {self.min_mbit:g} Mbit/s or more{latency}"

    def measured(self, lab):
        from .performance import measure_one, path
        return measure_one(lab, path(f"{self.src} → {self.target}", client=self.src, server=self.server,
                                     target=self.target), self.seconds, 50)

    def symptom(self, lab) -> str | None:
        """What a learner would notice, in numbers; None when the path is fast enough."""
        verdict = self.judge(lab, None)
        return None if verdict.ok else f"{describe_ns(self.src)} → {self.target}: {verdict.seen}"

    def judge(self, lab, snapshot):
        claim = self._claim()
        try:
            m = self.measured(lab)
        except LabError as error:
            return Verdict(False, claim, str(error))
        seen = f"{m.gbit_per_s * 1000:.0f} Mbit/s, round trip {m.latency_us:.0f} µs"
        slow = m.gbit_per_s * 1000 < self.min_mbit
        late = self.max_latency_us is not None and m.latency_us > self.max_latency_us
        if not (slow or late):
            return Verdict(True, claim, seen=seen)
        what = "throughput" if slow else "latency"
        return Verdict(False, claim, f"measured {seen}: something on the path limits its {what}; look at each "
                                     "interface it crosses: ip -d link (mtu), tc qdisc show (queues that shape "
                                     "or delay), iptables -L -v -n", seen=seen)


class same_network(Claim):
    """This lab host's network is the same as `other`'s, object by object (see Lab.differences)."""

    def __init__(self, other):
        self.other = other

    def judge(self, lab, snapshot):
        claim = "the network is the same as the reference built by lab.build"
        found = lab.differences(self.other)
        if found.empty:
            return Verdict(True, claim)
        first = [f"{row['kind']} only in {row['only in']}: {row['object']}" for _, row in found.head(3).iterrows()]
        return Verdict(False, claim, f"{len(found)} difference(s), such as " + "; ".join(first)
                       + " (all of them: lab.differences(reference))")


def run(lab: Lab, exercise: str, claims: tuple[Claim, ...]) -> CheckResult:
    if not isinstance(exercise, str):
        raise LabError(f"lab.check() takes the exercise's name first, like lab.check('veth pair', ...), "
                       f"not {exercise!r}")
    for claim in claims:
        if not isinstance(claim, Claim):
            raise LabError(f"lab.check() takes claims made with expect.*, like expect.reaches('c1', '10.0.0.1'), "
                           f"not {claim!r}")
    kinds = {"links"}.union(*(claim.needs for claim in claims)) if claims else {"links"}
    # A claim made from (or about) the outside world needs its namespaces read too.
    world = any(is_world(str(getattr(claim, "src", getattr(claim, "ns", "")))) for claim in claims)
    snapshot = lab.snapshot(kinds=kinds, world=world)
    result = CheckResult(exercise, [claim.judge(lab, snapshot) for claim in claims])
    from ..course.progress import record
    record(exercise, result)
    return result
