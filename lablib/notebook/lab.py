"""`Lab`: one disposable lab host, and everything a notebook does with it."""
from __future__ import annotations

import dataclasses
import html
import re
from typing import TYPE_CHECKING, Callable

from ..machine.limits import Limits
from ..model import errors
from ..model.protocol import (
    CommandOutput,
    ListNamespaces,
    ListProcesses,
    ReadLeftover,
    ReadSnapshot,
    Run,
    Spawn,
)
from ..model.state import Snapshot
from ..model.world import World
from .results import BackgroundProcess, CommandResult
from .sandbox import Sandbox

if TYPE_CHECKING:
    import graphviz
    import pandas as pd
    from pandas.io.formats.style import Styler

    from .builder import Network
    from .checks import CheckResult, Claim
    from .live import LiveView
    from .tracing import Tracing

DEFAULT_TIMEOUT = 30.0


def short(command: str, limit: int = 120) -> str:
    """A command as one line of at most `limit` characters, for messages."""
    text = " ".join(command.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# Full-screen programs need a terminal, which lab commands do not have; what to do instead.
INTERACTIVE = {
    **dict.fromkeys(["vim", "vi", "nvim", "nano", "emacs", "pico"],
                    "to write a file here, use a here-doc (cat > FILE <<'EOF' … EOF) or sed -i"),
    **dict.fromkeys(["less", "more", "most"], "to read a file here, use cat FILE (| head -50)"),
    "man": "to read a manual here, use man PAGE | cat (or CMD --help)",
    "top": "for one snapshot here, use top -b -n 1 | head -20 (or ps aux)",
    "htop": "for one snapshot here, use top -b -n 1 | head -20 (or ps aux)",
}


def interactive_program(command: str) -> str | None:
    """The full-screen program `command` simply runs (`vim x`, `sudo less y`), if any."""
    if any(mark in command for mark in "|>;&\n") or "<<" in command:
        return None   # piped, redirected or scripted: it may well work
    words = command.split()
    while words and (words[0] == "sudo" or "=" in words[0]):
        words = words[1:]
    if not words or words[0] not in INTERACTIVE:
        return None
    if words[0] == "top" and any(w.startswith("-b") or w == "--batch" for w in words[1:]):
        return None
    return words[0]


def check_command(command, ns, timeout, interactive: bool = True) -> None:
    """Refuse, in one line, what no command can be (before the lab host sees it)."""
    if not isinstance(command, str):
        raise errors.LabError(f"a command is a string, like lab.sh('ip link'), not {command!r}")
    if "\0" in command:
        raise errors.LabError("the command holds a NUL byte (\\0), which no command line can carry; remove it")
    if ns is not None and not isinstance(ns, str):
        raise errors.LabError(f"ns names a namespace, like ns='c1', not {ns!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise errors.LabError(f"timeout is a number of seconds above 0, like timeout=10, not {timeout!r}")
    program = interactive_program(command) if interactive else None
    if program:
        raise errors.LabError(f"'{program}' is an interactive full-screen program, which lab commands and %%lab "
                              f"cells cannot drive; {INTERACTIVE[program]}. For interactive programs, open a "
                              "terminal on a lab host: python -m lablib shell")


class Lab:
    """A fresh lab host: a Linux host of your own, plugged into a simulated internet.

    Commands run as root of the lab host (never of the machine), in the host itself or
    in a namespace you created (`ns="c1"`) or in the outside world (`ns="world:client"`).
    It disappears with `close()`, at the end of a `with` block, or when the Python
    process that made it ends, however it ends.
    """

    def __init__(self, *, quiet: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 max_processes: int | None = None, max_memory: int | str | None = None) -> None:
        """`max_processes` and `max_memory` ("1G", "512M" or bytes) limit what this lab
        host may use (defaults: 512 processes, 1 GiB); `python -m lablib doctor` says how
        this machine enforces them."""
        try:
            self.limits = Limits.of(max_processes, max_memory)
        except ValueError as error:
            raise errors.LabError(str(error)) from None
        self.timeout = timeout
        self.world = World()
        self._after_command: list[Callable[[], None]] = []
        self._last_drawn: Snapshot | None = None
        self._live: LiveView | None = None
        from .inside_python import PythonFunctions
        self._python = PythonFunctions()
        self._sandbox = Sandbox(self.limits)
        try:
            from . import magics
            magics.adopt(self)
            if not quiet:
                print(self.summary())
        except BaseException:   # Ctrl-C here must not leave a lab held by the traceback
            self._sandbox.close()
            raise

    # -- running things ------------------------------------------------------------------
    def sh(self, command: str, ns: str | None = None, *, check: bool = True,
           timeout: float | None = None,
           on_output: Callable[[str, bytes], None] | None = None, together: bool = False) -> CommandResult:
        """Run `command` with bash in the lab host (or namespace `ns`) and return its result.

        Raises CommandFailed on a non-zero exit when `check` is true, CommandTimeout when
        it runs past `timeout` seconds, WaitingForInput when it waits for the keyboard.
        `on_output(stream, bytes)` receives output as it comes. `together` puts stderr into
        stdout, in the order written, as a terminal shows them (%%lab does).
        """
        timeout = self.timeout if timeout is None else timeout
        check_command(command, ns, timeout)
        output = self._sandbox.call(Run(command, ns, timeout=timeout, stream=on_output is not None, together=together),
                                    on_chunk=on_output)
        result = CommandResult.from_agent(command, ns, output)
        self._changed()
        if not output.limit and output.exit_code in (137, -9) and self._sandbox.out_of_memory():
            output = dataclasses.replace(output, limit="memory")   # the lab's cgroup killed it for memory
        if output.limit:
            raise errors.LimitReached(self._limit_message(command, output), result)
        if output.stopped == "timeout":
            raise errors.CommandTimeout(
                f"`{short(command)}` was still running after {timeout:g} s{result.where}, "
                "so it was stopped (Ctrl-C); give it a limit (ping -c 3, curl -m 5, timeout 5 CMD) "
                "or a longer timeout", result)
        if output.stopped == "stdin":
            raise errors.WaitingForInput(
                f"'{output.waiting_program}' waited for keyboard input, which lab commands cannot give, "
                "so it was stopped; feed it with a pipe (echo text | CMD) or a here-doc (CMD <<EOF)", result)
        if check and not result.ok:
            raise errors.CommandFailed(result.failure_message(), result)
        return result

    def _limit_message(self, command: str, output: CommandOutput) -> str:
        from ..machine.limits import size
        what = f"`{command.strip()}`"
        if output.limit == "processes":
            return (f"{what} reached this lab host's limit of {self.limits.processes} processes (a fork bomb?) "
                    f"and was {'stopped' if output.stopped else 'refused more'}; other labs were not affected. "
                    "Lab(max_processes=...) sets the limit")
        scope = "in all" if self.limits.by_cgroup else "per process"
        return (f"{what} ran out of memory: this lab host allows {size(self.limits.memory)} {scope}; "
                "other labs were not affected. Lab(max_memory='2G') sets the limit")

    def spawn(self, command: str, ns: str | None = None, *, name: str | None = None,
              ready_port: int | None = None, ready_text: str | None = None,
              timeout: float = 10.0) -> BackgroundProcess:
        """Start a long-running process (a server, a capture) and return a handle to it.

        With `ready_port` (or `ready_text`), wait until it listens on that port (or has
        printed that text), so the next command can rely on it.
        """
        check_command(command, ns, timeout, interactive=False)
        if ready_port is not None and (isinstance(ready_port, bool) or not isinstance(ready_port, int)
                                       or not 0 < ready_port < 65536):
            raise errors.LabError(f"ready_port must be a port number from 1 to 65535, not {ready_port!r}")
        status = self._sandbox.call(Spawn(command, ns, name=name, ready_port=ready_port,
                                          ready_text=ready_text, timeout=timeout))
        process = BackgroundProcess(self, status)
        self._changed()
        waited = ready_port is not None or ready_text is not None
        if waited and status.exit_code is not None:
            log = process.log().strip().splitlines()
            raise errors.LabError(f"'{process.name}' exited with code {status.exit_code} before it was ready"
                                  + (f": {log[-1]}" if log else ""))
        if waited and not status.ready:
            what = f"listening on port {ready_port}" if ready_port is not None else f"printing {ready_text!r}"
            raise errors.LabError(f"'{process.name}' was not {what} after {timeout:g} s; "
                                  f"its log so far: {process.log().strip()[-300:]!r}")
        return process

    def build(self, containers: int | list[str] | tuple[str, ...] = ("c1", "c2"), *, bridge: str = "br0",
              subnet: str = "10.0.0.0/24", forward: bool | str = False, nat: bool = False, dns: bool = False,
              servers: dict[str, int] | None = None, publish: dict[int, tuple[str, int]] | None = None,
              show: bool = False) -> Network:
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

    def docker(self, *, fetch: bool = True):
        """Start real Docker (dockerd, containerd, runc) in this lab host; return when
        `docker` answers. Then `docker run -d -p 8080:80 --name web busybox httpd -f -p 80
        -h /var/www` and the rest run as typed, and each container's network namespace
        appears under its name (in drawings, tables, traces and checks).

        Docker's data lives in the lab host and goes with it. Missing programs are fetched
        once from Debian (`fetch=False`: raise DockerUnavailable instead).
        """
        from .docker import start
        info = start(self, fetch=fetch)
        self._changed()
        return info

    def snapshot(self, kinds: set[str] | None = None, namespaces: list[str] | None = None,
                 world: bool = False) -> Snapshot:
        """Read the lab host's kernel state (every namespace, or those named) in one pass.

        `kinds` picks from links, routes, neighbours, fdb, sysctls, rules, connections,
        sockets (links and their addresses always come); `world` adds the outside world.
        """
        return self._sandbox.call(ReadSnapshot(kinds=tuple(sorted(kinds)) if kinds else None,
                                               namespaces=tuple(namespaces) if namespaces is not None else None,
                                               world=world))

    def topology(self, *, routes: bool = False, world: bool = True, changes: bool = True,
                 collapse_after: int = 12) -> graphviz.Digraph:
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

    def compare_topology(self, other: "Lab", labels: tuple[str, str] = ("yours", "Docker's"), *,
                         world: bool = False):
        """This lab host's drawing next to `other`'s, side by side (made for comparing what
        you built with what real Docker built in a second lab host)."""
        from IPython.display import HTML

        from ..views.drawing import draw
        panels = []
        for lab, label in zip((self, other), labels):
            svg = draw(lab.snapshot(kinds={"links"}), None, world=world).pipe(format="svg").decode()
            svg = svg[svg.index("<svg"):]
            # Scaled to its half of the width (the viewBox keeps the proportions).
            svg = re.sub(r'<svg width="[^"]*" height="[^"]*"', '<svg width="100%"', svg, count=1)
            panels.append(f'<figure style="flex:1;margin:0 1em 0 0"><figcaption><b>{html.escape(label)}</b>'
                          f'</figcaption>{svg}</figure>')
        return HTML('<div style="display:flex;align-items:flex-start">' + "".join(panels) + "</div>")

    def table(self, kind: str, ns: str | list[str] | None = None) -> pd.DataFrame:
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

    def compare(self, *namespaces: str) -> Styler:
        """Namespaces' network stacks side by side — interfaces, addresses, routes,
        listening ports, firewall rules (all of them when none are named)."""
        from ..views.tables import comparison
        snapshot = self.snapshot(kinds={"links", "routes", "sockets", "rules"},
                                 namespaces=self._namespace_list(list(namespaces) or None))
        # A fixed uuid: the same lab gives the same HTML (pandas picks a random one otherwise).
        return comparison(snapshot).style.set_uuid("compare").set_properties(
            **{"white-space": "pre-wrap", "text-align": "left"})

    def slirp4netns(self, ns: str):
        """Give namespace `ns` (made if missing) a network the way rootless podman does.

        slirp4netns, a process of the host, plays a whole network in user space behind a
        `tap0` in `ns`: 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3. The host gets no
        veth, no bridge and no iptables rule; the namespace's connections leave from the
        host's own sockets. Returns the slirp4netns process (stop it to cut the network).
        """
        from .docker import slirp4netns
        process = slirp4netns(self, ns)
        self._changed()
        return process

    def compare_rules(self, other: "Lab", labels: tuple[str, str] = ("yours", "Docker's")):
        """This lab host's firewall next to `other`'s, chain by chain: which rules (and
        policies, and processes listening on TCP ports) are the same, which differ, and
        which only one of them has. Made for comparing your rules with real Docker's."""
        from ..model.state import HOST
        from ..views.rulesets import side_by_side
        mine, theirs = (lab.snapshot(kinds={"rules", "sockets"}, namespaces=[HOST]).namespaces[HOST]
                        for lab in (self, other))
        frame = side_by_side(mine, theirs, labels)
        colours = {"same": "color: #2a7a2a", "differs": "color: #b36b00"}
        return (frame.style.set_uuid("compare-rules").hide(axis="index")
                .map(lambda verdict: colours.get(verdict, "color: #b00020; font-weight: bold"), subset=[""])
                .set_properties(**{"white-space": "pre-wrap", "text-align": "left", "font-family": "monospace"}))

    def use(self) -> None:
        """Make `%%lab` and `%lab` run in this lab host (they follow the newest Lab otherwise)."""
        from . import magics
        magics.adopt(self)

    def live(self, *, routes: bool = False, world: bool = True, dock: bool = True) -> None:
        """Show one drawing that redraws itself after every command (docked in JupyterLab)."""
        from .live import LiveView
        if self._live is not None:
            self._live.stop()
        self._live = LiveView(self, routes=routes, world=world, dock=dock)
        return None

    @property
    def live_view(self) -> LiveView | None:
        """The drawing lab.live() keeps up to date (None before lab.live()); `.stop()` ends it."""
        return self._live

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

    def trace(self, filter: str = "ip or arp", *, netfilter: bool = True) -> Tracing:
        """Trace packets through every namespace while the `with` block runs.

            with lab.trace("icmp") as t:
                lab.sh("ping -c1 10.0.0.3", ns="c1")
            t.table(); t.graph(); t.sequence(); t.save("ping.pcap")

        `filter` is tcpdump syntax ("icmp", "arp", "tcp port 8080"); `netfilter` also
        reports the iptables/nft hooks, rules and verdicts each packet met.
        """
        from .tracing import Tracing
        return Tracing(self, filter, netfilter)

    def check(self, exercise: str, *claims: Claim) -> CheckResult:
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
        hairpin, wrong_network, forward_accepts, loopback_only, rp_filter, mtu; for a VXLAN overlay between hosts: vxlan_mtu, vxlan_fdb, vxlan_vni); `probe` (an expect.reaches) must work before and fail after. Shows
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
        return decode(self._sandbox.call(ReadLeftover()))[0]

    def processes(self) -> list[BackgroundProcess]:
        """The background processes started in this lab host (the outside world's servers too)."""
        return [BackgroundProcess(self, status) for status in self._sandbox.call(ListProcesses())]

    def namespaces(self) -> list[str]:
        """The named network namespaces, as `ip netns list` shows them."""
        return self._sandbox.call(ListNamespaces())

    # -- life cycle ----------------------------------------------------------------------
    def reset(self) -> None:
        """Throw this lab host away and start a fresh one in its place."""
        self._sandbox.close()
        self._sandbox = Sandbox(self.limits)
        self._last_drawn = None
        self._changed()

    def close(self) -> None:
        """End the lab host: every namespace, interface, rule and process in it is gone."""
        self._sandbox.close()
        self._changed()   # the live drawing says the lab host is gone

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

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _changed(self) -> None:
        for hook in list(self._after_command):
            hook()

    def summary(self) -> str:
        """What `Lab()` prints: the outside world's addresses, and anything that fell back
        while the lab host started."""
        notes = "".join(f"\nnote: {note}" for note in self._sandbox.notes)
        return ("A fresh lab host is ready, plugged into a simulated internet:\n" + self.world.summary()
                + f"\nlimits       {self.limits.summary()}" + notes)

    def __repr__(self) -> str:
        state = "running" if self.alive else "closed"
        return f"<Lab {state}: uplink {self.world.uplink} {self.world.host_address}>"
