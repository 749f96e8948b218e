"""Measuring paths: real iperf3 and round trips in a lab host, and the pure table views."""
from __future__ import annotations

import pytest

from lablib import LabError, measure
from lablib.views.measurements import Measurement, Measurements, from_iperf3


def test_a_bridge_path_is_measured_with_real_traffic(two_containers):
    lab = two_containers
    results = lab.measure([measure.path("bridge", client="c1", server="c2", target="10.0.0.3")],
                          round_trips=50)
    row = results.frame.loc["bridge"]
    assert row.gbit_per_s > 0.01 and 0 < row.latency_us < 100_000 and row.cpu_s_per_gb > 0
    # The servers are gone again: nothing listens on iperf3's port in c2.
    assert "5201" not in lab.sh("ss -ltn", ns="c2").stdout


def test_a_path_that_does_not_connect_says_so_in_one_line(two_containers):
    lab = two_containers
    with pytest.raises(LabError) as raised:
        lab.measure([measure.path("nowhere", client="c1", server="c2", target="10.0.0.99")])
    message = str(raised.value)
    assert "measuring 'nowhere' failed" in message and "\n" not in message


def test_a_published_port_is_measured_through_dnat(lab):
    lab.build(["c1", "c2"], forward=True, nat=True, publish={8080: ("c2", 5201)})
    results = lab.measure([measure.path("DNAT", client="world:client", server="c2:5201",
                                        target="203.0.113.10:8080")], round_trips=20)
    assert results.frame.loc["DNAT"].gbit_per_s > 0.01


def test_expect_fast_judges_a_rate_limited_link(two_containers):
    from lablib import expect
    lab = two_containers
    probe = expect.fast("c1", "10.0.0.3", server="c2", min_mbit=300)
    assert probe.judge(lab, None).ok
    lab.sh("tc qdisc add dev eth0 root tbf rate 20mbit burst 16kb latency 50ms", ns="c1")
    verdict = probe.judge(lab, None)
    assert not verdict.ok and "tc qdisc show" in verdict.hint


def report(gbit: float, seconds: float = 1.0) -> dict:
    bits = gbit * 1e9
    return {"end": {"sum_received": {"bits_per_second": bits, "bytes": bits * seconds / 8},
                    "sum_sent": {"retransmits": 3}}}


def test_figures_come_from_iperf3_json_and_print_without_padding():
    fast = from_iperf3("loopback", report(10), {"median_us": 20.4}, cpu_seconds=1.25)
    slow = from_iperf3("proxy", report(1), {"median_us": 140.0}, cpu_seconds=1.0)
    assert fast == Measurement("loopback", 10.0, 20.4, 1.0, 3)
    results = Measurements([slow, fast])
    assert results.ranking() == ["loopback", "proxy"]
    assert results.ranking("latency_us") == ["loopback", "proxy"]
    assert results.ratio("proxy", "loopback") == pytest.approx(10.0)
    assert repr(results).splitlines() == ["proxy, 1.00 Gbit/s, 140 µs, 8.00 CPU-s/GB, 3 retr",
                                          "loopback, 10.00 Gbit/s, 20 µs, 1.00 CPU-s/GB, 3 retr"]
    assert "<table" in results._repr_html_()
    figure = results.plot()
    assert len(figure.axes) == 3
