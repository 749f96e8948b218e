"""The simulated outside world every lab host is plugged into.

    lab host eth0 203.0.113.10 ── 203.0.113.1  internet (a router)  192.0.2.1 ── client 192.0.2.10
                                                    │ 198.51.100.1 (bridge "servers")
                                     ┌──────────────┴──────────────┐
                     example.com 198.51.100.10          DNS server 198.51.100.53

It uses only the documentation ranges and behaves like the real internet: the router
knows the routes to its own networks and to the lab host's uplink, nothing else — so
a container's packet that leaves without NAT reaches the server, and the reply dies at
the router. Its namespaces live outside /run/netns, so `ip netns list` never shows them;
lablib reaches them as ns="world:NAME".
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .labhost import WORLD, WORLD_RESOLV_CONF

UPLINK = "eth0"
PREFIX = 24


@dataclass(frozen=True)
class OutsideHost:
    """A machine of the simulated outside world."""
    name: str
    address: str
    role: str
    hostnames: tuple[str, ...] = ()

    @property
    def ns(self) -> str:
        """What to pass as `ns=` to run a command on this host."""
        return f"world:{self.name}"


HOST_UPLINK = "203.0.113.10"      # the lab host's own address on eth0
GATEWAY = "203.0.113.1"           # the internet router, seen from the lab host
STUB_RESOLVER = "127.0.0.53"      # the lab host's local resolver, as on Ubuntu

ROUTER = OutsideHost("internet", GATEWAY, "router between the lab host and the outside world",
                     ("router.example.net",))
WEB = OutsideHost("web", "198.51.100.10", "web server; its reply shows the address it saw you come from",
                  ("example.com", "www.example.com"))
DNS = OutsideHost("dns", "198.51.100.53", "DNS server for the outside world's names",
                  ("resolver.example.net",))
CLIENT = OutsideHost("client", "192.0.2.10", "a machine out on the internet, to reach the lab host from outside",
                     ("client.example.org",))
HOSTS = (ROUTER, WEB, DNS, CLIENT)


@dataclass(frozen=True)
class World:
    """What a learner needs to know about the outside world of their lab host."""
    uplink: str = UPLINK
    host_address: str = HOST_UPLINK
    gateway: str = GATEWAY
    stub_resolver: str = STUB_RESOLVER
    router: OutsideHost = ROUTER
    web: OutsideHost = WEB
    dns: OutsideHost = DNS
    client: OutsideHost = CLIENT

    def summary(self) -> str:
        rows = [
            f"lab host     {self.uplink} {self.host_address}/{PREFIX}, default route via {self.gateway} (the internet router)",
            f"example.com  {self.web.address}   web server: its reply shows the client address it saw",
            f"DNS server   {self.dns.address}  the outside world's resolver; the lab host asks it through {self.stub_resolver}",
            f"client       {self.client.address}     a machine outside: lab.sh(cmd, ns=\"{self.client.ns}\")",
        ]
        return "\n".join(rows)


# -- building it (inside the sandbox) -------------------------------------------------

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
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
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
                       argv=["nsenter", f"--net={WORLD / 'web'}", sys.executable, "-m",
                             "lablib.webserver", "--fd", str(listener.fileno())])
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
