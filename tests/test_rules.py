"""The rule parser reads iptables rules as fields: negation, protocol, ports, addresses,
states, target and order — so a claim judges exactly the rule it names (pure, no lab)."""
from __future__ import annotations

from lablib.views.rules import mismatches, parse_rule, parse_spec, shadowed_by


def test_a_negated_out_interface_is_not_the_out_interface():
    spec = parse_spec(["--in-interface bridge_home", "--out-interface eth0", "--jump ACCEPT"])
    assert mismatches(spec, parse_rule("-A FORWARD -i bridge_home -o eth0 -j ACCEPT")) == []
    problems = mismatches(spec, parse_rule("-A FORWARD -i bridge_home ! -o eth0 -j ACCEPT"))
    assert problems and "opposite" in problems[0]


def test_a_rule_for_udp_only_is_not_a_rule_for_all_traffic():
    spec = parse_spec(["-i bridge_home", "-o eth0", "-j ACCEPT"])
    problems = mismatches(spec, parse_rule("-A FORWARD -i bridge_home -o eth0 -p udp -j ACCEPT"))
    assert problems == ["it also requires -p udp, so it does not match everything asked"]


def test_a_port_without_protocol_means_tcp():
    spec = parse_spec(["--dport 8080", "REJECT"])
    assert mismatches(spec, parse_rule("-A INPUT -p tcp -m tcp --dport 8080 -j REJECT "
                                       "--reject-with icmp-port-unreachable")) == []
    assert mismatches(spec, parse_rule("-A INPUT -p udp -m udp --dport 8080 -j REJECT"))
    assert mismatches(spec, parse_rule("-A INPUT -p tcp -m tcp --dport 8081 -j REJECT"))


def test_addresses_are_normalised_to_networks():
    spec = parse_spec(["-s 172.17.0.2", "-d 172.17.0.2", "-p tcp", "--dport 80", "-j MASQUERADE"])
    rule = parse_rule("-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE")
    assert mismatches(spec, rule) == []
    broad = parse_rule("-A POSTROUTING -s 172.17.0.0/16 -d 172.17.0.0/16 -j MASQUERADE")
    assert mismatches(spec, broad)                     # not the same rule ...
    assert mismatches(spec, broad, broader=True) == []  # ... but one that covers it


def test_multiport_and_conntrack_states_are_read():
    rule = parse_rule("-A FORWARD -p tcp -m multiport --dports 80,443 -m conntrack --ctstate RELATED,ESTABLISHED "
                      "-j ACCEPT")
    assert rule.matches["dport"].value == frozenset({80, 443})
    assert rule.matches["ctstate"].value == frozenset({"RELATED", "ESTABLISHED"})
    spec = parse_spec(["-m conntrack --ctstate ESTABLISHED,RELATED", "-j ACCEPT", "-p tcp", "--dports 443,80"])
    assert mismatches(spec, rule) == []


def test_target_options_are_compared():
    spec = parse_spec(["-d 127.0.0.11", "-p udp", "--dport 53", "-j DNAT", "--to-destination 127.0.0.11:10053"])
    good = parse_rule("-A OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:10053")
    wrong = parse_rule("-A OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:53")
    assert mismatches(spec, good) == []
    assert mismatches(spec, wrong) == ["its --to-destination is 127.0.0.11:53"]


def test_a_rule_after_return_or_an_unconditional_drop_is_never_reached():
    chain = [parse_rule("-A DOCKER-USER -j RETURN"), parse_rule("-A DOCKER-USER -s 192.0.2.10/32 -j DROP")]
    assert shadowed_by(chain, 1) is chain[0]
    chain = [parse_rule("-A DOCKER-USER -s 192.0.2.10/32 -j DROP"), parse_rule("-A DOCKER-USER -j RETURN")]
    assert shadowed_by(chain, 0) is None
    chain = [parse_rule("-A FORWARD -i eth0 -j DROP"), parse_rule("-A FORWARD -i eth0 -o br0 -j ACCEPT")]
    assert shadowed_by(chain, 1) is chain[0]
    chain = [parse_rule("-A FORWARD -i eth1 -j DROP"), parse_rule("-A FORWARD -i eth0 -o br0 -j ACCEPT")]
    assert shadowed_by(chain, 1) is None


def test_a_bare_address_in_a_claim_is_the_rules_source_or_destination():
    spec = parse_spec(["192.0.2.10"])
    assert mismatches(spec, parse_rule("-A DOCKER-USER -s 192.0.2.10/32 -j DROP")) == []
    assert mismatches(spec, parse_rule("-A DOCKER-USER -s 192.0.2.11/32 -j DROP"))


def test_typed_commands_parse_like_saved_rules():
    typed = parse_rule("sudo iptables -t nat --append POSTROUTING --out-interface eth0 --jump MASQUERADE")
    assert typed.chain == "POSTROUTING" and typed.matches["out"].value == "eth0" and typed.target == "MASQUERADE"


def test_a_claim_of_bare_words_names_only_those():
    spec = parse_spec(["127.0.0.11", "DNAT"])
    assert mismatches(spec, parse_rule("-A OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT "
                                       "--to-destination 127.0.0.11:10053")) == []
    assert mismatches(spec, parse_rule("-A OUTPUT -d 127.0.0.12/32 -p udp -j DNAT --to-destination 1.2.3.4"))


def test_a_claim_renders_as_the_iptables_options_that_add_it():
    from lablib.views.rules import render
    assert render(parse_spec(["--dport 8080", "REJECT"])) == "-p tcp --dport 8080 -j REJECT"
    assert render(parse_spec(["--in-interface eth0", "--out-interface bridge_home", "--jump ACCEPT"])) == \
        "-i eth0 -o bridge_home -j ACCEPT"
    assert render(parse_spec(["-s 172.18.0.0/16", "! -o br-app", "-j MASQUERADE"])) == \
        "! -o br-app -s 172.18.0.0/16 -j MASQUERADE"


def test_predicted_values_compare_as_addresses_rules_or_words():
    from lablib.views.observe import same_value
    assert same_value("172.17.0.2", "172.17.0.2/32")
    assert not same_value("10.0.0.2", "203.0.113.10")
    assert same_value("-A FORWARD -i br0 -o eth0 -j ACCEPT", "-A FORWARD -i br0 -o eth0 -j ACCEPT")
    assert not same_value("-A FORWARD -i br0 -o eth0 -j ACCEPT", "-A FORWARD -i br0 ! -o eth0 -j ACCEPT")
    assert same_value("Host", "host") and not same_value("host", "c1")
