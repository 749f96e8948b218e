"""`python -m lablib doctor`: is this machine ready to run lab hosts, and if not, what fixes it."""
from __future__ import annotations

import time

from ..machine import tools
from ..machine.ids import id_mapping
from ..machine.userns import VM_HINT, Finding, user_namespace_blockers


def check_tools() -> Finding:
    absent = tools.missing()
    if absent:
        return Finding(False, f"missing tools: {', '.join(sorted(absent))}", tools.install_hint(absent))
    return Finding(True, f"all {len(tools.packages())} system tools the labs use are installed")


def check_ids() -> Finding:
    mapping = id_mapping()
    if mapping == "identity":
        return Finding(True, "running as root: lab hosts map every user id to itself", required=False)
    if mapping == "subids":
        return Finding(True, "your subordinate uid/gid ranges are mapped: tcpdump and dnsmasq switch users as usual",
                       required=False)
    return Finding(True, "no /etc/subuid range for you: lab hosts map only your own id, and shims keep tcpdump "
                   "and dnsmasq working (for the full map: sudo usermod --add-subuids 100000-165535 "
                   "--add-subgids 100000-165535 $USER)", required=False)


KERNEL_PROBES = {
    "veth pairs": "ip link add doctor-a type veth peer name doctor-b",
    "bridges": "ip link add doctor-br type bridge",
    "vxlan": "ip link add doctor-vx type vxlan id 42 dstport 4789",
    "iptables NAT": "iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE",
    "nftables": "nft add table inet doctor",
    "br_netfilter": "test -e /proc/sys/net/bridge/bridge-nf-call-iptables",
    "conntrack": "conntrack -L",
    "/etc/netns": "mkdir -p /etc/netns/doctor",
}


def check_lab_host() -> list[Finding]:
    """Start a real lab host and try the kernel features the labs use inside it."""
    from ..model.errors import LabError
    from ..notebook.lab import Lab

    started = time.monotonic()
    try:
        lab = Lab(quiet=True)
    except LabError as error:
        return [Finding(False, "a lab host cannot start here", str(error))]
    findings = [Finding(True, f"a lab host starts, with its outside world, in {1000 * (time.monotonic() - started):.0f} ms")]
    try:
        for feature, command in KERNEL_PROBES.items():
            result = lab.sh(command, ns=None, check=False, timeout=10)
            findings.append(Finding(result.ok, f"kernel feature: {feature}",
                                    "" if result.ok else f"`{command}` failed: {result.stderr.strip()}; {VM_HINT}",
                                    required=feature != "vxlan"))
        reach = lab.sh("curl -s -m 3 http://example.com/ip", check=False)
        findings.append(Finding(reach.ok, "the lab host reaches the simulated example.com by name",
                                "" if reach.ok else reach.stderr.strip()))
    finally:
        lab.close()
    return findings


def check_docker(lab_host_ok: bool) -> Finding:
    """Whether Docker labs (lab.docker()) can run: the programs, then a real dockerd."""
    from ..machine import docker

    ready, what = docker.readiness()
    if not ready or not lab_host_ok:
        return Finding(False, "Docker labs cannot run here yet" if ready else what,
                       docker.FETCH_HINT if not ready else "fix the lab host first", required=False)
    from ..model.errors import LabError
    from ..notebook.lab import Lab

    try:
        with Lab(quiet=True) as lab:
            started = time.monotonic()
            info = lab.docker(fetch=False)
            seconds = time.monotonic() - started
    except LabError as error:
        return Finding(False, "dockerd does not start in a lab host here", str(error), required=False)
    return Finding(True, f"{what}; Docker {info.version} starts in a lab host in {seconds:.1f} s "
                   "(networking as on a real host; no cgroup resource limits)", required=False)


def run(quiet: bool = False, docker: bool = False) -> int:
    """Print the doctor's report; return 0 when the labs can run here."""
    findings = [check_tools(), *user_namespace_blockers(), check_ids()]
    if findings[0].ok and not any(not f.ok for f in findings[1:]):
        findings += check_lab_host()
    if docker:
        findings.append(check_docker(not any(not f.ok and f.required for f in findings)))
    else:
        from ..machine import docker as docker_programs
        ready, what = docker_programs.readiness()
        findings.append(Finding(ready, what if ready else "Docker labs: Docker's programs are not here",
                                "" if ready else docker_programs.FETCH_HINT, required=False))
    problems = [f for f in findings if not f.ok and f.required]
    for finding in findings:
        if quiet and finding.ok:
            continue
        mark = "✓" if finding.ok else ("✗" if finding.required else "!")
        print(f"{mark} {finding.what}" + (f"\n    fix: {finding.fix}" if finding.fix and not finding.ok else ""))
        if finding.ok and finding.fix:
            print(f"    {finding.fix}")
    if not quiet or problems:
        print("ready for the labs" if not problems else f"{len(problems)} problem(s) to fix before the labs can run")
    return 1 if problems else 0
