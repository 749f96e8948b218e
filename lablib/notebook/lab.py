"""`Lab`: one disposable lab host, and everything a notebook does with it."""
from __future__ import annotations

from typing import Callable

from ..model import errors
from ..model.state import Snapshot
from ..model.world import World
from .results import BackgroundProcess, CommandResult
from .sandbox import Sandbox

DEFAULT_TIMEOUT = 30.0


class Lab:
    """A fresh lab host: a Linux host of your own, plugged into a simulated internet.

    Commands run as root of the lab host (never of the machine), in the host itself or
    in a namespace you created (`ns="c1"`) or in the outside world (`ns="world:client"`).
    It disappears with `close()`, at the end of a `with` block, or when the Python
    process that made it ends, however it ends.
    """

    def __init__(self, *, quiet: bool = False, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.world = World()
        self._after_command: list[Callable[[], None]] = []
        self._last_drawn: Snapshot | None = None
        self._live = None
        from .inside_python import PythonFunctions
        self._python = PythonFunctions()
        self._sandbox = Sandbox()
        from . import magics
        magics.adopt(self)
        if not quiet:
            print(self.summary())

    # -- running things ------------------------------------------------------------------
    def sh(self, command: str, ns: str | None = None, *, check: bool = True,
           timeout: float | None = None,
           on_output: Callable[[str, bytes], None] | None = None) -> CommandResult:
        """Run `command` with bash in the lab host (or namespace `ns`) and return its result.

        Raises CommandFailed on a non-zero exit when `check` is true, CommandTimeout when
        it runs past `timeout` seconds, WaitingForInput when it waits for the keyboard.
        `on_output(stream, bytes)` receives output as it comes.
        """
        raw = self._sandbox.request("run", on_chunk=on_output, command=command, ns=ns,
                                    timeout=timeout or self.timeout, stream=on_output is not None)
        result = CommandResult.from_agent(command, ns, raw)
        self._changed()
        if raw["stopped"] == "timeout":
            raise errors.CommandTimeout(
                f"`{command.strip()}` was still running after {timeout or self.timeout:g} s{result.where}, "
                "so it was stopped (Ctrl-C); give it a limit (ping -c 3, curl -m 5, timeout 5 CMD) "
                "or a longer timeout", result)
        if raw["stopped"] == "stdin":
            raise errors.WaitingForInput(
                f"'{raw['waiting_program']}' waited for keyboard input, which lab commands cannot give, "
                "so it was stopped; feed it with a pipe (echo text | CMD) or a here-doc (CMD <<EOF)", result)
        if check and not result.ok:
            raise errors.CommandFailed(result.failure_message(), result)
        return result

    def spawn(self, command: str, ns: str | None = None, *, name: str | None = None,
              ready_port: int | None = None, ready_text: str | None = None,
              timeout: float = 10.0) -> BackgroundProcess:
        """Start a long-running process (a server, a capture) and return a handle to it.

        With `ready_port` (or `ready_text`), wait until it listens on that port (or has
        printed that text), so the next command can rely on it.
        """
        status = self._sandbox.request("spawn", command=command, ns=ns, name=name,
                                       ready_port=ready_port, ready_text=ready_text, timeout=timeout)
        process = BackgroundProcess(self, status)
        self._changed()
        waited = ready_port is not None or ready_text is not None
        if waited and status["exit_code"] is not None:
            log = process.log().strip().splitlines()
            raise errors.LabError(f"'{process.name}' exited with code {status['exit_code']} before it was ready"
                                  + (f": {log[-1]}" if log else ""))
        if waited and not status["ready"]:
            what = f"listening on port {ready_port}" if ready_port is not None else f"printing {ready_text!r}"
            raise errors.LabError(f"'{process.name}' was not {what} after {timeout:g} s; "
                                  f"its log so far: {process.log().strip()[-300:]!r}")
        return process

    def build(self, containers: int | list[str] | tuple[str, ...] = ("c1", "c2"), *, bridge: str = "br0",
              subnet: str = "10.0.0.0/24", forward: bool | str = False, nat: bool = False, dns: bool = False,
              servers: dict[str, int] | None = None, publish: dict[int, tuple[str, int]] | None = None,
              show: bool = False):
        """Build containers on a bridge in one call, with the commands a learner would type.

        Each container is a namespace with `eth0` (its veth peer `veth-NAME` on `bridge`),
        the next free address of `subnet`, and a default route via the bridge, which
        takes the first address. Options add, as Docker would: `forward` (ip_forward, FORWARD
        policy DROP, and accepts bridge→uplink, uplink→bridge and bridge→bridge: where notebook
        04 ends; `forward="docker"`: policy DROP, replies by conntrack RELATED,ESTABLISHED, the
        bridge's traffic out and within), `nat` (MASQUERADE for the subnet), `dns` (a resolv.conf per
        container), `servers` ({"c1": 80}: an HTTP server), `publish` ({8080: ("c1", 80)}:
        DNAT from the host's port). `show=True` prints the commands. Returns a Network.
        """
        from .builder import build
        return build(self, containers, bridge=bridge, subnet=subnet, forward=forward, nat=nat,
                     dns=dns, servers=servers, publish=publish, show=show)

    def build_hosts(self, count: int = 2, *, containers: int = 2,
                    subnet: str | list[str] | tuple[str, ...] = "172.17.0.0/16", bridge: str = "docker0",
                    span: bool = False, nat: bool = True, vxlan: int | None = None, mtu: int | None = None,
                    show: bool = False):
        """Build `count` hosts in one lab, each a namespace acting as a machine of its own.

        Host N is namespace `hostN` with `eth0` at 10.168.0.(N+1) on a shared LAN (the lab
        host's bridge `lan0`, 10.168.0.1, routes it to the internet), its own `bridge`, and
        `containers` containers numbered across the cluster (host1: c1, c2; host2: c3, c4),
        each with `eth0` on its host's bridge. `subnet`: one for every host (Docker's
        default: each host's bridge has 172.17.0.1 and its containers 172.17.0.2, ... —
        the same addresses on every host) or a list, one per host. `span=True`: one subnet
        across the hosts, addresses unique in the cluster, no gateway; `vxlan=42` joins
        the bridges with a VXLAN device `vxlan0` of that VNI (UDP 4789 over eth0, static
        FDB entries to the other hosts, MTU 1450 inside). `nat`: Docker's MASQUERADE on
        each host. Returns a Cluster; run commands with ns="host2" or ns="c3".
        """
        from .hosts import build_hosts
        return build_hosts(self, count, containers=containers, subnet=subnet, bridge=bridge, span=span,
                           nat=nat, vxlan=vxlan, mtu=mtu, show=show)

    def snapshot(self, kinds: set[str] | None = None, namespaces: list[str] | None = None,
                 world: bool = False) -> Snapshot:
        """Read the lab host's kernel state (every namespace, or those named) in one pass.

        `kinds` picks from links, routes, neighbours, fdb, sysctls, rules, connections,
        sockets (links and their addresses always come); `world` adds the outside world.
        """
        return self._sandbox.request("snapshot", kinds=sorted(kinds) if kinds else None,
                                     namespaces=namespaces, world=world)

    def topology(self, *, routes: bool = False, world: bool = True, changes: bool = True,
                 collapse_after: int = 12):
        """A drawing of the lab host as the kernel has it now (renders inline in Jupyter).

        `routes` lists each namespace's routes; `world` draws the outside world as a cloud;
        `changes` highlights what is new since the previous drawing (blue) and what went
        away (red); past `collapse_after` containers, look-alike ones are grouped.
        """
        from ..views.drawing import draw
        current = self.snapshot(kinds={"links", "routes"} if routes else {"links"})
        drawing = draw(current, self._last_drawn if changes else None, routes=routes, world=world,
                       collapse_after=collapse_after)
        self._last_drawn = current
        return drawing

    def table(self, kind: str, ns: str | list[str] | None = None):
        """One kind of kernel state as a pandas DataFrame, from every namespace or `ns`.

        Kinds: links, addrs, routes, neigh, fdb, rules (with packet counters), nat,
        conntrack, sockets, sysctls. The outside world is included only when named
        (ns="world:internet").
        """
        from ..views.tables import NEEDS, table
        if kind not in NEEDS:
            raise errors.LabError(f"unknown table '{kind}'; choose one of: {', '.join(NEEDS)}")
        wanted = self._namespace_list(ns)
        # Every namespace is read (a veth's peer may be anywhere); rows are then filtered.
        frame = table(self.snapshot(kinds={"links", *NEEDS[kind]}, world=True), kind)
        shown = wanted if wanted is not None else ["host", *self.namespaces()]
        return frame[frame["ns"].isin(shown)].reset_index(drop=True)

    def compare(self, *namespaces: str):
        """Namespaces' network stacks side by side — interfaces, addresses, routes,
        listening ports, firewall rules (all of them when none are named)."""
        from ..views.tables import comparison
        snapshot = self.snapshot(kinds={"links", "routes", "sockets", "rules"},
                                 namespaces=self._namespace_list(list(namespaces) or None))
        # A fixed uuid: the same lab gives the same HTML (pandas picks a random one otherwise).
        return comparison(snapshot).style.set_uuid("compare").set_properties(
            **{"white-space": "pre-wrap", "text-align": "left"})

    def live(self, *, routes: bool = False, world: bool = True, dock: bool = True):
        """Show one drawing that redraws itself after every command (docked in JupyterLab)."""
        from .live import LiveView
        if self._live is not None:
            self._live.stop()
        self._live = LiveView(self, routes=routes, world=world, dock=dock)
        return None

    def _namespace_list(self, ns: str | list[str] | None) -> list[str] | None:
        if ns is None:
            return None
        names = [ns] if isinstance(ns, str) else list(ns)
        known = set(self.namespaces()) | {"host"} | {h.ns for h in
                                                    (self.world.router, self.world.web, self.world.dns, self.world.client)}
        unknown = [name for name in names if name not in known]
        if unknown:
            existing = ", ".join(["host", *self.namespaces()])
            raise errors.NamespaceNotFound(f"namespace '{unknown[0]}' does not exist in this lab; existing: {existing}")
        return names

    def trace(self, filter: str = "ip or arp", *, netfilter: bool = True):
        """Trace packets through every namespace while the `with` block runs.

            with lab.trace("icmp") as t:
                lab.sh("ping -c1 10.0.0.3", ns="c1")
            t.table(); t.graph(); t.sequence(); t.save("ping.pcap")

        `filter` is tcpdump syntax ("icmp", "arp", "tcp port 8080"); `netfilter` also
        reports the iptables/nft hooks, rules and verdicts each packet met.
        """
        from .tracing import Tracing
        return Tracing(self, filter, netfilter)

    def check(self, exercise: str, *claims):
        """Check an exercise against the lab host's real state: ✅, or ❌ with hints.

            lab.check("veth pair", expect.interface("c1", "eth0", up=True),
                      expect.reaches("c1", "10.0.0.1"))
        """
        from .checks import run
        return run(self, exercise, claims)

    def differences(self, other: "Lab", kinds: tuple[str, ...] = ("links", "addrs", "routes", "rules")):
        """What differs between this lab host's network and `other`'s (interfaces, IPv4
        addresses, routes, firewall rules): a DataFrame, empty when they are the same."""
        from ..views.network_diff import differences
        return differences({kind: self.table(kind) for kind in kinds}, {kind: other.table(kind) for kind in kinds})

    def python(self, function):
        """Decorator: keep a Python function to run inside the lab host (where pyroute2 can
        reach its namespaces); call it with `lab.call(name, *args)`."""
        return self._python.keep(function)

    def call(self, name: str, *args, timeout: float | None = None, **kwargs):
        """Run the `@lab.python` function `name` inside the lab host, in a fresh python3 that
        has every kept function, and return its (JSON-able) value; what it prints is shown."""
        return self._python.call(self, name, args, kwargs, timeout or self.timeout)

    def measure(self, paths: list, *, seconds: float = 1.0, round_trips: int = 500):
        """Measure each path's TCP throughput (iperf3), request/response latency and the
        CPU time spent per GB moved; returns a table that can also `.plot()`.

            lab.measure([measure.path("bridge", client="c1", server="c2", target="10.0.0.3")])
        """
        from .performance import measure
        return measure(self, paths, seconds=seconds, round_trips=round_trips)

    def predict(self, exercise: str, question: str, *, choices: dict[str, str] | None = None,
                answer: str | None = None):
        """A prediction to commit before an experiment (`p.answer = "b"`), then compare
        with what the trace or counters show: `p.observe_trace(t, "source_at", at="c2")`,
        `p.observe_counters(before, after)`, or `p.observe(value)`. See notebook/predict.py."""
        from .predict import Prediction
        return Prediction(exercise, question, choices, answer)

    def plant_fault(self, exercise: str, *, among: list[str], probe, seed: str | None = None):
        """Break the working network in one way, chosen for this learner from `among`
        (lo_down, default_route, ip_forward, masquerade, forward_drop, resolv_conf, arp,
        hairpin, forward_accepts, loopback_only, rp_filter, mtu; for a VXLAN overlay between hosts: vxlan_mtu, vxlan_fdb, vxlan_vni); `probe` (an expect.reaches) must work before and fail after. Shows
        only the symptom; `fault.check()` judges the fix. See notebook/faults.py."""
        from .faults import PlantedFault
        return PlantedFault(self, exercise, list(among), probe, seed)

    def fault_hunts(self, exercise: str, *, probes: dict, count: int = 8, seed: str | None = None):
        """A break-and-fix challenge set: `count` faults drawn for this learner from `probes`
        ({kind: the expect.reaches it breaks}), planted one at a time by `hunts.next()`, each
        with `fault.hint()` (where to look, then the layer, then the fix) and `fault.check()`.
        See notebook/faults.py."""
        from .faults import FaultHunts
        return FaultHunts(self, exercise, probes, count, seed)

    def counters(self):
        """The firewall rules with their packet counters, now (a Snapshot): read it before
        and after an experiment to see which rule counted the packets."""
        return self.snapshot(kinds={"rules"})

    def background_output(self) -> str:
        """What jobs left running by finished commands (`server &` in a %%lab cell) have
        printed since (the newest 256 KiB)."""
        from .results import decode
        return decode(self._sandbox.request("leftover"))[0]

    def processes(self) -> list[BackgroundProcess]:
        """The background processes started in this lab host (the outside world's servers too)."""
        return [BackgroundProcess(self, status) for status in self._sandbox.request("process", action="list")]

    def namespaces(self) -> list[str]:
        """The named network namespaces, as `ip netns list` shows them."""
        return self._sandbox.request("namespaces")

    # -- life cycle ----------------------------------------------------------------------
    def reset(self) -> None:
        """Throw this lab host away and start a fresh one in its place."""
        self._sandbox.close()
        self._sandbox = Sandbox()
        self._last_drawn = None
        self._changed()

    def close(self) -> None:
        """End the lab host: every namespace, interface, rule and process in it is gone."""
        self._sandbox.close()

    @property
    def sandbox(self) -> Sandbox:
        """The running sandbox and the pipe to its agent (for lablib's own tools)."""
        return self._sandbox

    def on_change(self, hook: Callable[[], None]) -> None:
        """Call `hook` after every command, spawn and reset (the live view redraws so)."""
        self._after_command.append(hook)

    def remove_on_change(self, hook: Callable[[], None]) -> None:
        if hook in self._after_command:
            self._after_command.remove(hook)

    @property
    def alive(self) -> bool:
        return self._sandbox.alive

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _changed(self) -> None:
        for hook in list(self._after_command):
            hook()

    def summary(self) -> str:
        return "A fresh lab host is ready, plugged into a simulated internet:\n" + self.world.summary()

    def __repr__(self) -> str:
        state = "running" if self.alive else "closed"
        return f"<Lab {state}: uplink {self.world.uplink} {self.world.host_address}>"
