"""Figures for checks (issue 12): what exact claims cost. Prints medians; asserts nothing.

    .venv/bin/python benchmarks/bench_checks.py [--runs N]

A check is run by hand, after a learner's cell: it should answer within a second. A
reaching claim reads the firewall counters before and after its probe (to say whether a
rule refused it), so it costs two rule snapshots more than the probe itself.
"""
from __future__ import annotations

import argparse

from figures import median_ms, timed

from lablib import Lab, expect
from lablib.views.rules import mismatches, parse_rule, parse_spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    spec = parse_spec(["-i bridge_home", "-o eth0", "-j ACCEPT"])
    line = "-A FORWARD -i bridge_home ! -o eth0 -p tcp -m conntrack --ctstate NEW -j ACCEPT"
    print("parse + compare one rule      ", median_ms(timed(lambda: mismatches(spec, parse_rule(line)), runs * 100)))
    with Lab(quiet=True) as lab:
        lab.build(["c1", "c2"], forward=True, nat=True, dns=True, servers={"c2": 80})
        lab.sh("iptables -P FORWARD DROP")
        for _ in range(20):
            lab.sh("iptables -A FORWARD -i br0 -o eth0 -p udp --dport 9999 -j ACCEPT")
        claims = {
            "rule (23 rules in FORWARD)    ": expect.rule("filter", "FORWARD", "-i br0", "-o eth0", "-j ACCEPT"),
            "policy DROP                   ": expect.policy("filter", "FORWARD", "DROP"),
            "reaches http (counters read)  ": expect.reaches("c1", "http://10.0.0.3/"),
            "not_reaches refused (port 81) ": expect.not_reaches("c1", "10.0.0.3:81"),
            "resolves by DNS (dig)         ": expect.resolves("c1", "example.com", to="198.51.100.10"),
        }
        for name, claim in claims.items():
            print(name, median_ms(timed(lambda claim=claim: lab.check("bench", claim), runs)))
        print("raw probe: curl from c1       ",
              median_ms(timed(lambda: lab.sh("curl -s -m 2 http://10.0.0.3/", ns="c1"), runs)))


if __name__ == "__main__":
    main()
