"""Real Docker inside a lab host: it builds what the course builds by hand, and leaves nothing.

Runs as root, as a user with a subordinate id range and as one without (run_all.py runs
this file as each). Docker's programs come from the machine or from `./labkit setup
--docker` (which `./labkit test` runs first).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import host_state
import pytest
from conftest import ROOT

from lablib import Lab, LabError, expect
from lablib.machine import docker as machine_docker

PUBLISH = "docker run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /var/www"
PAGE = "Hello from a Docker container"


@pytest.fixture(scope="module")
def docker_lab():
    assert not machine_docker.missing(), f"Docker's programs are missing: run {machine_docker.FETCH_HINT}"
    with Lab(quiet=True) as lab:
        lab.docker(fetch=False)
        lab.sh(PUBLISH)
        yield lab


def test_a_published_container_answers_the_outside_client(docker_lab):
    page = docker_lab.sh("curl -sS -m 5 http://203.0.113.10:8080/", ns="world:client").stdout
    assert PAGE in page


def test_a_published_container_answers_the_host_on_every_local_address(docker_lab):
    for address in ("127.0.0.1", "203.0.113.10", "172.17.0.1"):
        assert PAGE in docker_lab.sh(f"curl -sS -m 5 http://{address}:8080/").stdout, address


def test_docker_builds_the_bridge_and_turns_forwarding_on(docker_lab):
    assert "172.17.0.1/16" in docker_lab.sh("ip -br addr show docker0").stdout
    assert docker_lab.sh("ip -br link show master docker0").stdout.startswith("veth")
    assert docker_lab.sh("sysctl -n net.ipv4.ip_forward").stdout.strip() == "1"


def test_docker_installs_its_chains_and_rules(docker_lab):
    saved = docker_lab.sh("iptables-save").stdout.splitlines()
    expected = [
        ":FORWARD DROP",
        "-A FORWARD -j DOCKER-USER",
        "-A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A FORWARD -o docker0 -j DOCKER",
        "-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
        "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
        "-A DOCKER-USER -j RETURN",
        "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
        "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
        "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
    ]
    missing = [rule for rule in expected if not any(line.startswith(rule) for line in saved)]
    assert missing == []


def test_docker_proxy_listens_on_the_published_port(docker_lab):
    proxies = docker_lab.sh("ps -eo args | grep '^[^ ]*docker-proxy'").stdout.splitlines()
    assert len(proxies) == 2     # IPv4 and IPv6
    assert all("-host-port 8080 -container-ip 172.17.0.2 -container-port 80" in line for line in proxies)
    assert "docker-proxy" in docker_lab.sh("ss -Hltnp 'sport = :8080'").stdout


def test_a_container_appears_as_a_namespace_under_its_name(docker_lab):
    assert "web" in docker_lab.namespaces()
    addresses = docker_lab.table("addrs", ns="web")
    assert "172.17.0.2" in set(addresses["address"])
    drawing = docker_lab.topology().source
    assert "web" in drawing and "docker0" in drawing


def test_checks_judge_docker_containers_like_any_namespace(docker_lab):
    assert docker_lab.check("published", expect.reaches("world:client", "http://203.0.113.10:8080/",
                                                       expect_text=PAGE)).passed
    assert not docker_lab.check("closed", expect.reaches("world:client", "203.0.113.10:8081")).passed
    assert docker_lab.check("from the container", expect.reaches("web", "http://example.com/"),
                            expect.interface("web", "eth0", up=True, address="172.17.0.2/16")).passed


def test_a_removed_container_leaves_the_namespace_list(docker_lab):
    docker_lab.sh("docker run -d --name brief busybox sleep 600")
    assert "brief" in docker_lab.namespaces()
    docker_lab.sh("docker rm -f brief")
    assert "brief" not in docker_lab.namespaces()


def test_a_user_defined_network_gets_dockers_embedded_dns(docker_lab):
    docker_lab.sh("docker network create appnet && docker run -d --name app --network appnet busybox sleep 600")
    try:
        assert "nameserver 127.0.0.11" in docker_lab.sh("docker exec app cat /etc/resolv.conf").stdout
        assert "198.51.100.10" in docker_lab.sh("docker exec app nslookup example.com").stdout
        rules = docker_lab.sh("iptables-save -t nat", ns="app").stdout
        assert "DOCKER_OUTPUT" in rules and "DOCKER_POSTROUTING" in rules
        assert "app" in docker_lab.namespaces()
    finally:
        docker_lab.sh("docker rm -f app && docker network rm appnet")


def test_containers_reach_the_outside_world_by_name(docker_lab):
    seen = docker_lab.sh("docker exec web wget -q -O - http://example.com/ip").stdout.strip()
    assert seen == "203.0.113.10"    # MASQUERADE: the web server sees the lab host's address


def test_a_missing_program_is_one_line_saying_what_to_do(monkeypatch):
    monkeypatch.setattr(machine_docker, "missing", lambda: ["dockerd"])
    monkeypatch.setattr(machine_docker, "programs", lambda: {"dockerd": None})
    with Lab(quiet=True) as lab:
        with pytest.raises(Exception) as raised:
            lab.docker(fetch=False)
    message = str(raised.value)
    assert "\n" not in message and machine_docker.FETCH_HINT in message


HOLDER = """
import sys
from lablib import Lab
lab = Lab(quiet=True)
lab.docker(fetch=False)
lab.sh("docker run -d --name web -p 8080:80 busybox httpd -f -p 80 -h /var/www")
print(lab.sandbox.process.pid, flush=True)
sys.stdin.readline()
if {close}:
    lab.close()
    print("closed", flush=True)
lab.sh("sleep 300", timeout=600)
"""


def _processes_left(mark: str) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        left = host_state.processes()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.mark.parametrize("ending", ["close", "kill -9"])
def test_nothing_of_docker_is_left_on_the_machine(ending, monkeypatch):
    mark = f"docker-residue-{os.getpid()}-{ending.replace(' ', '')}"
    monkeypatch.setenv(host_state.RUN_MARK, mark)
    before = host_state.capture()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER.format(close=ending == "close"))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip().isdigit(), "the holder did not start Docker"
        running = host_state.processes()
        assert any("dockerd" in line for line in running), running
        holder.stdin.write("go on\n")
        holder.stdin.flush()
        if ending == "close":
            assert holder.stdout.readline().strip() == "closed"
        else:
            time.sleep(0.2)   # let `sleep 300` start: the kill lands mid-command
        holder.send_signal(signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    assert _processes_left(mark) == []
    assert host_state.differences(before, host_state.capture()) == []


def test_slirp4netns_gives_a_namespace_a_network_with_nothing_on_the_host(lab):
    """Rootless podman's networking: tap0 10.0.2.100 inside, no interface and no rule outside."""
    if not lab.sh("exec 3<>/dev/net/tun", check=False).ok:   # as Debian ships it: mode 0666
        with pytest.raises(LabError, match=r"^slirp4netns needs /dev/net/tun.*chmod 0666 /dev/net/tun$"):
            lab.slirp4netns("pod")
        return
    lab.slirp4netns("pod")
    inside = lab.sh("ip -br addr show tap0 && ip route", ns="pod").stdout
    assert "10.0.2.100/24" in inside and "default via 10.0.2.2 dev tap0" in inside
    host_links = lab.sh("ip -o link show | awk -F': ' '{print $2}'").stdout.split()
    assert [name.split("@")[0] for name in host_links] == ["lo", "eth0"]
    assert "-A " not in lab.sh("iptables-save").stdout
    # The connection leaves from the lab host's own socket: the server sees the host's address.
    assert lab.sh("curl -sS -m 5 http://example.com/ip", ns="pod").stdout.strip() == "203.0.113.10"


def test_a_container_that_ends_by_itself_leaves_the_drawing(docker_lab):
    docker_lab.sh("docker run -d --name brief2 busybox sleep 1")
    assert "brief2" in docker_lab.namespaces()
    deadline = time.monotonic() + 15      # no command runs meanwhile: only snapshots
    while "brief2" in docker_lab.snapshot().namespaces and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "brief2" not in docker_lab.snapshot().namespaces
    docker_lab.sh("docker rm brief2")


def test_docker_before_lab_docker_says_to_start_it(lab):
    result = lab.sh("docker ps", check=False)
    assert not result.ok
    assert "start it with lab.docker()" in result.failure_message()


def test_a_container_joined_with_network_container_shows_as_its_owner(docker_lab):
    """--network container:X: one namespace, shown under the name of the container that made it,
    with both containers' servers listening in it."""
    docker_lab.sh("docker run -d --name owner busybox httpd -f -p 80 -h /var/www")
    docker_lab.sh("docker run -d --name joiner --network container:owner busybox httpd -f -p 8081 -h /var/www")
    try:
        names = docker_lab.namespaces()
        assert "owner" in names and "joiner" not in names
        listening = docker_lab.sh("ss -Hltn", ns="owner").stdout
        assert ":80 " in listening and ":8081 " in listening
    finally:
        docker_lab.sh("docker rm -f joiner owner")


def test_compare_topology_draws_both_lab_hosts_side_by_side(docker_lab, lab):
    lab.build(["web"], subnet="172.17.0.0/16", bridge="docker0")
    html = lab.compare_topology(docker_lab, labels=("mine", "Docker's")).data
    assert html.count("<svg") == 2 and "<b>mine</b>" in html and "<b>Docker&#x27;s</b>" in html
    assert re.search(r"veth(-|&#45;)web", html.split("<b>Docker")[0])   # mine on the left (graphviz writes - as &#45;)
    assert re.search(r"veth[0-9a-f]{7}", html.split("<b>Docker")[1])   # Docker's veth on the right
