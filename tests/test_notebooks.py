"""The notebooks as a course: each covers its SYLLABUS.md row, has checked exercises,
and its checks really check — in the student edition (solutions removed), every check
answers ❌. (nbval, run by tests/run_all.py, re-runs each notebook and compares outputs.)
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

from lablib.course.editions import ANSWER, student_edition, write_student_editions

pytestmark = pytest.mark.notebooks
LABS = ROOT / "labs"
NOTEBOOKS = sorted(LABS.glob("[0-9][0-9]-*.ipynb"))

# What each SYLLABUS.md row needs to be seen happening: regexes that must match the
# notebook's code cells or their outputs.
SYLLABUS = {
    "00": [r"%%lab", r"lab\.live\(", r"lab\.topology\(", r"lab\.trace\(", r"lab\.check\(", r"lab\.reset\(",
           r"Address already in use"],
    "01": [r"ip netns add", r"ip netns list", r"ip netns exec", r"ip (link|route|addr)", r"iptables",
           r"state DOWN", r"Couldn't connect to server", r"ip link set (dev )?lo up", r"--net=host",
           r"--net=none", r"Address already in use|http\.server 8080"],
    "02": [r"type veth peer name", r"ip link set \S+ netns", r"@if\d+|link-netns", r"10\.0\.0\.10/24",
           r"10\.0\.0\.11/24", r"ping", r"curl", r"route add default via"],
    "03": [r"type bridge", r"master", r"bridge fdb show", r"ip neigh", r"FORWARD", r"10\.0\.0\.1/24",
           r"docker0", r"172\.17\.0\.0/16", r"02:42:ac:11:00:02", r"lab\.trace\(", r"ARP"],
    "04": [r"ip route", r"route -n", r"net\.ipv4\.ip_forward", r"/proc/sys/net/ipv4/ip_forward", r"FORWARD",
           r"bridge-nf-call-iptables", r"lab\.trace\("],
    "05": [r"MASQUERADE", r"POSTROUTING", r"conntrack -L", r"SNAT", r"DNAT", r"! -o (docker0|br0)",
           r"-v", r"lab\.trace\("],
    "06": [r"Name or service not known|Temporary failure in name resolution", r"/etc/netns/", r"resolv\.conf",
           r"dig", r"127\.0\.0\.53", r"127\.0\.0\.11"],
    "07": [r"PREROUTING", r"DNAT", r"OUTPUT", r"route_localnet", r"hairpin", r"docker-proxy", r"DOCKER-USER",
           r"8080:80"],
    "08": [r"--network host", r"--net=host", r"--network none", r"--network container:web",
           r"docker network create --driver bridge app", r"br-app", r"172\.18\.0\.0/16",
           r"DOCKER-ISOLATION-STAGE-1", r"DOCKER-ISOLATION-STAGE-2", r"-o br-app -j DROP",
           r"Address already in use", r"Network is unreachable", r"ip netns exec quiet ip -br addr",
           r"127\.0\.0\.11", r"ndots:0", r"\.NetworkSettings\.Networks", r"map\[bridge:",
           r"\.docker\(\)", r"compare_rules\(", r"compare_topology\(", r"slirp4netns\(", r"tap0",
           r"10\.0\.2\.100", r"ip_local_port_range", r"INPUT counted 1", r"lab\.predict\(", r"plant_fault\(",
           r"lab\.trace\("],
    "09": [r"build_hosts\(", r"host1", r"host2", r"172\.17\.0\.0/16", r"10\.0\.1\.0/24", r"10\.0\.2\.0/24",
           r"ip route add 10\.0\.2\.0/24 via 10\.168\.0\.3", r"-j RETURN", r"MASQUERADE",
           r"type vxlan id 42 dstport 4789 dev eth0", r"bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst",
           r"dst 10\.168\.0\.3 self\b(?! permanent)", r"mtu 1450", r"VXLAN 42 \[ICMP echo request",
           r"outer src", r"vni", r"tuntap|mode tap", r"Unknown device type", r"lab\.trace\(", r"plant_fault\("],
    "10": [r"nsenter -n -t \$PID", r"ip netns pids", r"lsns -t net", r"ps -eo pid", r"tcpdump -i br0 -n",
           r"ip netns exec c2 tcpdump -i eth0 -n", r"tcpdump -i br0 -n -l -c 2 icmp", r"port 80",
           r"ping -c 1 -W 1 10\.0\.0\.1 +# 1: container ↔ bridge", r"# 2: bridge ↔ eth0",
           r"-j LOG --log-prefix", r"dmesg: read kernel buffer failed: Operation not permitted", r"kern\.log",
           r"-j NFLOG --nflog-group 5", r"tcpdump -i nflog:5", r"listening on nflog:5", r"-j TRACE",
           r"xtables-monitor --trace", r"TRACE: 2 \S+ filter:FORWARD", r"meta nftrace set 1", r"nft monitor trace",
           r"lab\.predict\(", r"lab\.trace\(", r"lab\.fault_hunts\(", r"hunts\.next\(", r"fault\.hint\(\)",
           r"💡 hint 1/3", r"can't reach", r"loopback_only", r"rp_filter", r"\"mtu\"", r"hairpin",
           r"lo_down", r"default_route", r"ip_forward", r"forward_accepts", r"masquerade", r"resolv_conf"],
    "11": [r"iperf3 -c", r"ping -c \d+ -i", r"lab\.measure\(", r"loopback", r"veth", r"bridge", r"MASQUERADE",
           r"DNAT", r"userland proxy", r"VXLAN", r"Gbit/s", r"µs", r"CPU-s/GB", r"\.plot\(\)", r"lab\.predict\("],
    "12": [r"搭建完整的容器网络环境", r"state DOWN|DOWN\s", r"iptables -P FORWARD DROP",
           r"IPRoute\(\)", r"NetNS\(", r"netns\.create", r"@lab\.python", r"lab\.call\(", r"lab\.differences\(",
           r"same as the reference"],
}


def code_and_outputs(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def tagged(notebook, tag: str) -> list:
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_covers_its_syllabus_row(path: Path):
    text = code_and_outputs(nbformat.read(path, as_version=4))
    missing = [pattern for pattern in SYLLABUS[path.name[:2]] if not re.search(pattern, text)]
    assert missing == [], f"{path.name} does not show: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_two_exercises_each_with_a_hidden_solution_and_a_check(path: Path):
    notebook = nbformat.read(path, as_version=4)
    checks, solutions = tagged(notebook, "check"), tagged(notebook, "solution")
    assert len(checks) >= 2 and len(solutions) >= len(checks)
    assert all(cell.metadata.get("jupyter", {}).get("source_hidden") for cell in solutions)
    # a build check (lab.check), a prediction observed (p.observe...), or a fault's check
    assert all(re.search(r"lab\.check\(|\.observe(_trace|_counters)?\(|fault\w*\.check\(\)", cell.source)
               for cell in checks)
    for cell in checks:   # the committed run shows each exercise solved
        assert code_and_outputs(nbformat.v4.new_notebook(cells=[cell])).count("✅") >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_check_answers_no_when_the_solutions_are_skipped(path: Path):
    """The student edition, run as it is: each check must see the unsolved state."""
    notebook = student_edition(nbformat.read(path, as_version=4))
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(LABS)}}).execute()
    for cell in tagged(notebook, "check"):
        text = code_and_outputs(nbformat.v4.new_notebook(cells=[cell]))
        assert text.splitlines()[-1:] and "❌" in text and "Error" not in text, \
            f"{path.name}: a check passed (or failed to run) without its solution:\n{cell.source}\n{text}"


def test_student_editions_have_no_solutions_and_no_outputs(tmp_path):
    written = write_student_editions(LABS, tmp_path)
    assert [p.name for p in written] == [p.name for p in sorted(LABS.glob("*.ipynb"))]
    for path in written:
        notebook = nbformat.read(path, as_version=4)
        assert tagged(notebook, "solution") == []
        assert len(tagged(notebook, "check")) >= 2
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        # Where each solution was, an empty cell to answer in, just before its check.
        answers = tagged(notebook, "answer")
        assert len(answers) >= len(tagged(notebook, "check"))
        for cell in answers:
            assert cell.source.endswith(ANSWER) or ANSWER + ":" in cell.source
            following = notebook.cells[notebook.cells.index(cell) + 1:]
            assert any("check" in c.metadata.get("tags", []) for c in following[:2])
        assert "hidden cell" not in "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_carries_no_widget_state(path: Path):
    """Saved widget state reopens the live panel, empty, before anything runs."""
    notebook = nbformat.read(path, as_version=4)
    assert "widgets" not in notebook.metadata, f"{path.name}: strip metadata.widgets (see labs/AUTHORING.md)"
    views = [cell.source for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert views == [], f"{path.name}: cells whose output is a widget, which shows as text when reopened: {views}"
