"""iptables rules read as data: what a rule matches, what it does, and whether a packet
can ever reach it.

Pure functions of rule text (iptables-save's `-A CHAIN ...` lines, or the words of a
claim). A rule is parsed into fields — interfaces with their negation, protocol, ports,
addresses normalised to networks (172.17.0.2 == 172.17.0.2/32), conntrack states, the
target and its options — so that `! -o eth0` is never taken for `-o eth0`, and a rule
for UDP is never taken for one about TCP.

    spec = parse_spec(["-i bridge_home", "-o eth0", "-j ACCEPT"])
    rule = parse_rule("-A FORWARD -i bridge_home ! -o eth0 -j ACCEPT")
    mismatches(spec, rule)   # ["it matches packets *not* leaving by eth0 (! -o eth0)"]
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

TERMINAL = {"ACCEPT", "DROP", "REJECT", "RETURN"}
TARGETS = TERMINAL | {"MASQUERADE", "SNAT", "DNAT", "REDIRECT", "LOG", "MARK", "CONNMARK", "NOTRACK", "CT",
                      "TRACE"}
BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}

# Long spellings iptables accepts, and the short ones iptables-save prints.
ALIASES = {"--in-interface": "-i", "--out-interface": "-o", "--jump": "-j", "--source": "-s", "--src": "-s",
           "--destination": "-d", "--dst": "-d", "--protocol": "-p", "--append": "-A", "--insert": "-I",
           "--goto": "-g", "--match": "-m", "--source-port": "--sport", "--destination-port": "--dport",
           "--source-ports": "--sports", "--destination-ports": "--dports"}
PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "132": "sctp"}


@dataclass(frozen=True)
class Match:
    """One condition: a value, and whether it is negated (`! -o eth0`)."""
    value: object
    negated: bool = False

    def show(self, option: str) -> str:
        value = ",".join(sorted(self.value)) if isinstance(self.value, frozenset) else self.value
        return f"{'! ' if self.negated else ''}{option} {value}"


@dataclass
class ParsedRule:
    """A rule's fields. `matches` maps a field to its Match: in, out, protocol, source,
    destination, sport, dport (frozensets of port numbers or ranges), ctstate."""
    chain: str = ""
    matches: dict[str, Match] = field(default_factory=dict)
    target: str | None = None
    target_options: dict[str, str] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)     # conditions this module does not read
    addresses: list[str] = field(default_factory=list)  # bare addresses of a claim: -s or -d
    text: str = ""

    @property
    def unconditional(self) -> bool:
        return not self.matches and not self.other

    def __str__(self) -> str:
        return self.text


class RuleSyntaxError(ValueError):
    pass


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def _ports(text: str) -> frozenset:
    """`80`, `80,443`, `1000:2000` -> a frozenset of ints and (low, high) ranges."""
    found = set()
    for part in text.split(","):
        if ":" in part:
            low, high = part.split(":", 1)
            found.add((int(low or 0), int(high or 65535)))
        else:
            found.add(int(part))
    return frozenset(found)


def _tokens(words) -> list[str]:
    text = " ".join(words) if not isinstance(words, str) else words
    try:
        parts = shlex.split(text)
    except ValueError:
        parts = text.split()
    return [ALIASES.get(part, part) for part in parts]


def _parse(tokens: list[str], *, claim: bool) -> ParsedRule:
    rule = ParsedRule(text=" ".join(tokens))
    i, negate = 0, False
    while i < len(tokens):
        token = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if token == "!":
            negate, i = True, i + 1
            continue
        step = 2
        if token in ("-A", "-I", "-N"):
            rule.chain = value or ""
            if token == "-I" and i + 2 < len(tokens) and tokens[i + 2].isdigit():
                step = 3
        elif token in ("-i", "-o"):
            rule.matches["in" if token == "-i" else "out"] = Match(value, negate)
        elif token == "-p":
            rule.matches["protocol"] = Match(PROTOCOL_NUMBERS.get(value, value.lower()), negate)
        elif token in ("-s", "-d"):
            try:
                rule.matches["source" if token == "-s" else "destination"] = Match(_network(value), negate)
            except ValueError:
                if not claim:
                    raise
                # A claim may name an address by its start ("172.17.0."): kept as text.
                rule.matches["source" if token == "-s" else "destination"] = Match(value, negate)
        elif token in ("--sport", "--dport", "--sports", "--dports"):
            rule.matches["sport" if "sport" in token else "dport"] = Match(_ports(value), negate)
        elif token in ("--ctstate", "--state"):
            rule.matches["ctstate"] = Match(frozenset(value.upper().split(",")), negate)
        elif token == "-m":
            pass                                   # tcp, udp, conntrack, multiport: read by their options
        elif token == "-c":                        # counters given on the command line
            step = 3
        elif token in ("-j", "-g"):
            rule.target = value
            i += 2
            # The target's own options follow it: --to-destination, --reject-with, ...
            while i < len(tokens) and tokens[i].startswith("--"):
                option = tokens[i]
                argument = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("-") else ""
                rule.target_options[option] = argument
                i += 2 if argument else 1
            negate = False
            continue
        elif token == "--comment":
            pass
        elif claim and not token.startswith("-"):
            # A bare word in a claim: a target (ACCEPT, DNAT) or an address (-s or -d).
            if token.upper() in TARGETS or token.startswith("DOCKER"):
                rule.target = token.upper() if token.upper() in TARGETS else token
            else:
                rule.addresses.append(token)
            step = 1
        elif token.startswith("-"):
            rule.other.append(f"{'! ' if negate else ''}{token}" + (f" {value}" if value and not value.startswith("-")
                                                                       else ""))
            step = 2 if value and not value.startswith("-") else 1
        else:
            step = 1
        negate = False
        i += step
    return rule


def parse_rule(line: str) -> ParsedRule:
    """An iptables-save line (`-A FORWARD -i br0 -j ACCEPT`), or one typed at iptables."""
    tokens = _tokens(line)
    if tokens and tokens[0] in ("iptables", "sudo"):
        tokens = tokens[tokens.index("iptables") + 1:] if "iptables" in tokens else tokens[1:]
    if "-t" in tokens:
        index = tokens.index("-t")
        del tokens[index:index + 2]
    return _parse(tokens, claim=False)


def parse_spec(words) -> ParsedRule:
    """The words of a claim: ("-o eth0", "-j ACCEPT"), long spellings or short."""
    return _parse(_tokens(words), claim=True)


# -- comparing a claim with a rule -------------------------------------------------------
FIELD_WORDS = {"in": "-i", "out": "-o", "protocol": "-p", "source": "-s", "destination": "-d",
               "sport": "--sport", "dport": "--dport", "ctstate": "--ctstate"}


def _implied_protocol(spec: ParsedRule) -> Match | None:
    """A claim's protocol: named, or TCP when it names a port without one (the course's
    ports are TCP unless said otherwise)."""
    if "protocol" in spec.matches:
        return spec.matches["protocol"]
    if "sport" in spec.matches or "dport" in spec.matches:
        return Match("tcp")
    return None


def _address_covers(outer, inner) -> bool:
    if isinstance(inner, str) or isinstance(outer, str):
        return str(outer).startswith(str(inner)) if isinstance(inner, str) else False
    return inner.version == outer.version and inner.subnet_of(outer)


def _ports_cover(outer: frozenset, inner: frozenset) -> bool:
    def expand(ports):
        out = set()
        for p in ports:
            out.update(range(p[0], p[1] + 1) if isinstance(p, tuple) else [p])
        return out
    return expand(inner) <= expand(outer)


def _show_address(value) -> str:
    if isinstance(value, str):
        return value + "*"
    return str(value.network_address) if value.prefixlen == value.max_prefixlen else str(value)


def _describe(name: str, match: Match) -> str:
    value = match.value
    if name in ("source", "destination"):
        value = _show_address(value)
    elif isinstance(value, frozenset):
        value = ",".join(sorted(f"{v[0]}:{v[1]}" if isinstance(v, tuple) else str(v) for v in value))
    return f"{'! ' if match.negated else ''}{FIELD_WORDS[name]} {value}"


def mismatches(spec: ParsedRule, rule: ParsedRule, *, broader: bool = False) -> list[str]:
    """Why `rule` is not the rule `spec` describes ([] when it is).

    Every field the claim names must be in the rule with the same negation and value
    (with `broader`, the rule may cover more: a /16 for a /32, a port range); every
    field the claim does not name must not narrow the rule (a rule for UDP only is not
    a rule for all traffic). Target and the target's options named must be equal.
    """
    problems = []
    wanted = dict(spec.matches)
    protocol = _implied_protocol(spec)
    if protocol is not None:
        wanted["protocol"] = protocol
    for name, want in wanted.items():
        have = rule.matches.get(name)
        if have is None:
            if broader:
                continue
            problems.append(f"it has no {_describe(name, want)}")
            continue
        if have.negated != want.negated:
            problems.append(f"it has {_describe(name, have)}, the opposite of {_describe(name, want)}")
            continue
        if name in ("source", "destination"):
            same = _address_covers(have.value, want.value) if (broader or isinstance(want.value, str)) \
                else have.value == want.value
        elif name in ("sport", "dport"):
            same = _ports_cover(have.value, want.value) if broader else have.value == want.value
        elif name == "in" or name == "out":
            same = have.value == want.value or (have.value.endswith("+") and want.value.startswith(have.value[:-1]))
        else:
            same = have.value == want.value
        if not same:
            problems.append(f"it has {_describe(name, have)}, not {_describe(name, want)}")
    def bare(have: Match) -> bool:   # a claim's bare address names this -s or -d
        return any(str(have.value).split("/")[0] == a or (a.endswith(".") and str(have.value).startswith(a))
                   for a in spec.addresses)
    loose = not spec.matches          # a claim of bare words only ("192.0.2.10", "DNAT") names only those
    for name, have in rule.matches.items():
        if name in ("source", "destination") and name not in wanted and not have.negated and bare(have):
            continue
        if loose:
            continue
        if name not in wanted:
            if name == "ctstate" and not have.negated and {"NEW"} <= set(have.value):
                continue   # "new connections" is what an accept rule for a service means
            problems.append(f"it also requires {_describe(name, have)}, so it does not match everything asked")
    for address in spec.addresses:
        try:
            network = _network(address)
        except ValueError:
            network = address
        found = [m for n, m in rule.matches.items() if n in ("source", "destination") and not m.negated
                 and (_address_covers(m.value, network) if broader or isinstance(network, str) else m.value == network)]
        if not found and rule.target_options.get("--to-destination", "").split(":")[0] != address:
            problems.append(f"it does not name {address}")
    if spec.target and rule.target != spec.target:
        problems.append(f"its target is {rule.target or 'none'}, not {spec.target}")
    for option, value in spec.target_options.items():
        if rule.target_options.get(option) != value:
            have = rule.target_options.get(option)
            problems.append(f"its {option} is {have}" if have else f"it has no {option} {value}")
    return problems


def covers(earlier: ParsedRule, later: ParsedRule) -> bool:
    """Every packet `later` matches is matched by `earlier` too (as far as fields tell)."""
    if earlier.other:
        return False
    for name, match in earlier.matches.items():
        other = later.matches.get(name)
        if other is None or other.negated != match.negated:
            return False
        if name in ("source", "destination"):
            if isinstance(match.value, str) or isinstance(other.value, str):
                return False
            if not (_address_covers(match.value, other.value) if not match.negated else match.value == other.value):
                return False
        elif name in ("sport", "dport"):
            if not _ports_cover(match.value, other.value):
                return False
        elif name == "ctstate":
            if not (other.value <= match.value if not match.negated else match.value == other.value):
                return False
        elif match.value != other.value:
            return False
    return True


def shadowed_by(rules: list[ParsedRule], index: int) -> ParsedRule | None:
    """The earlier rule of the same chain that decides every packet `rules[index]` would
    match (an unconditional DROP or RETURN, or one covering it), or None."""
    for earlier in rules[:index]:
        if earlier.target in TERMINAL and covers(earlier, rules[index]):
            return earlier
    return None


def render(spec: ParsedRule) -> str:
    """A claim as the options iptables takes (`-p tcp --dport 8080 -j REJECT`), so a hint
    can give the command; bare addresses become -s."""
    words = []
    protocol = _implied_protocol(spec)
    order = ["in", "out", "source", "destination", "protocol", "sport", "dport", "ctstate"]
    matches = dict(spec.matches)
    if protocol is not None:
        matches["protocol"] = protocol
    for name in order:
        if name in matches:
            match = matches[name]
            if name == "ctstate":
                words.append(f"-m conntrack {'! ' if match.negated else ''}--ctstate "
                             f"{','.join(sorted(match.value))}")
            elif name in ("sport", "dport") and len(match.value) > 1:
                words.append(f"-m multiport {_describe(name, match).replace('port ', 'ports ')}")
            else:
                words.append(_describe(name, match))
    words += [f"-s {address}" for address in spec.addresses]
    if spec.target:
        words.append(f"-j {spec.target}")
    words += [f"{option} {value}".strip() for option, value in spec.target_options.items()]
    return " ".join(words)


def shared(spec: ParsedRule, rule: ParsedRule) -> int:
    """How many of the options a claim names the rule has exactly (for ranking near misses)."""
    count = sum(1 for name, match in spec.matches.items() if rule.matches.get(name) == match)
    count += sum(1 for address in spec.addresses
                 if any(str(m.value).split("/")[0] == address for m in rule.matches.values()))
    return count + (spec.target is not None and rule.target == spec.target)
