"""Inside the sandbox: build the simulated outside world (see model/world.py for its map).

Its namespaces live outside /run/netns, so `ip netns list` never shows them; lablib
reaches them as ns="world:NAME".
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..model.names import sysctl_path
from ..model.world import (
    CLIENT,
    DNS,
    GATEWAY,
    HOST_UPLINK,
    HOSTS,
    PREFIX,
    STUB_RESOLVER,
    UPLINK,
    WEB,
    OutsideHost,
)
from .labhost import WORLD, WORLD_RESOLV_CONF

WEB_SERVER = Path(__file__).with_name("webserver.py")   # run as a script: see its docstring


def _host_batch() -> str:
    w = WORLD
    return f"""\
link set lo up
link add {UPLINK} type veth peer name lab-host netns {w}/internet
link set {UPLINK} up
addr add {HOST_UPLINK}/{PREFIX} dev {UPLINK}
route add default via {GATEWAY}
link add eth0 netns {w}/web type veth peer name web netns {w}/internet
link add eth0 netns {w}/dns type veth peer name dns netns {w}/internet
link add eth0 netns {w}/client type veth peer name client netns {w}/internet
"""


def _router_batch() -> str:
    return f"""\
link set lo up
link set lab-host up
addr add {GATEWAY}/{PREFIX} dev lab-host
link add servers type bridge
link set web master servers
link set dns master servers
link set web up
link set dns up
link set servers up
addr add 198.51.100.1/{PREFIX} dev servers
link set client up
addr add 192.0.2.1/{PREFIX} dev client
"""


def _end_host_batch(host: OutsideHost, gateway: str) -> str:
    return f"""\
link set lo up
link set eth0 up
addr add {host.address}/{PREFIX} dev eth0
route add default via {gateway}
"""


def _ip_batch(script: str, netns: str | None = None) -> None:
    argv = ["ip", "-batch", "-"]
    if netns:
        argv = ["nsenter", f"--net={WORLD / netns}", *argv]
    _run(argv, script)


def _run(argv: list[str], stdin: str = "") -> None:
    done = subprocess.run(argv, input=stdin.encode(), capture_output=True)
    if done.returncode:
        raise RuntimeError(f"building the outside world failed at `{' '.join(argv)}`: "
                           f"{done.stderr.decode().strip()}")


def _write_sysctls(values: dict[str, str]) -> None:
    for key, value in values.items():
        with open(sysctl_path(key), "w") as f:
            f.write(value)


def dns_records() -> list[str]:
    """dnsmasq host-records: each name answers A and, for the address, PTR."""
    records = [f"--host-record={','.join(h.hostnames)},{h.address}" for h in HOSTS if h.hostnames]
    records.append(f"--host-record=lab-host.example.net,{HOST_UPLINK}")
    return records


def build(runner) -> dict:
    """Create the outside world and its servers; returns {name: pid} of the servers."""
    from .linux import create_netns, in_netns

    _give_world_its_resolver()
    for host in HOSTS:
        create_netns(str(WORLD / host.name))
    _ip_batch(_host_batch())
    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(_ip_batch, _router_batch(), "internet")]
        jobs += [pool.submit(_ip_batch, _end_host_batch(h, "198.51.100.1" if h is not CLIENT else "192.0.2.1"), h.name)
                 for h in (WEB, DNS, CLIENT)]
        for job in jobs:
            job.result()
    # The router forwards, and must not drop a private source address on arrival
    # (rp_filter): the lesson is that the *reply* cannot find its way back.
    in_netns(str(WORLD / "internet"), lambda: _write_sysctls({
        "net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0"}))

    servers = {}
    # The web server's socket is bound here, before its process starts: the kernel
    # queues connections at once, so the world is ready without waiting for Python.
    listener = in_netns(str(WORLD / "web"), lambda: _listen(WEB.address, 80))
    web = runner.spawn("", None, name="example.com web server", pass_fds=(listener.fileno(),),
                       argv=["nsenter", f"--net={WORLD / 'web'}", sys.executable, "-I", "-S",
                             str(WEB_SERVER), "--fd", str(listener.fileno())])
    listener.close()
    servers["web"] = web.process.pid
    common = ["--keep-in-foreground", "--user=root", "--group=", "--bind-interfaces",
              "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", "--log-facility=-"]
    dns = runner.spawn("", None, name="outside DNS server", argv=[
        "nsenter", f"--net={WORLD / 'dns'}", "dnsmasq", *common,
        f"--listen-address={DNS.address}", "--local=/#/", "--bogus-priv", "--log-queries",
        *dns_records()])
    stub = runner.spawn("", None, name="stub resolver", argv=[
        "dnsmasq", *common, f"--listen-address={STUB_RESOLVER}", f"--server={DNS.address}"])
    for server in (dns, stub):
        _wait_logged(server, b"started, version")
        servers[server.name] = server.process.pid
    return servers


def _give_world_its_resolver() -> None:
    """Outside hosts resolve through the outside DNS server, not the lab host's stub
    (processes.argv_for mounts this file over /etc/resolv.conf for their commands)."""
    WORLD_RESOLV_CONF.write_text(f"nameserver {DNS.address}\n")


def _listen(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _wait_logged(server, text: bytes, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log:
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start: {bytes(server.log).decode(errors='replace').strip()}")
        time.sleep(0.001)
