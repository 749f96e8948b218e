"""`lab.docker()`: real Docker in a lab host, started from the notebook.

The programs come from lablib/machine/docker.py (the machine's own, or Debian's unpacked
into the project); what runs inside the lab host is lablib/inside/docker.py.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass

from ..machine import docker as machine_docker
from ..model import errors


@dataclass(frozen=True)
class DockerInfo:
    """What `lab.docker()` started: Docker's version, storage and image."""
    version: str
    storage: str
    cgroup_driver: str
    image: str
    web_root: str
    seconds: float | None

    def __repr__(self) -> str:
        return (f"Docker {self.version} runs in this lab host (storage {self.storage}, cgroup driver "
                f"{self.cgroup_driver}: no resource limits); image {self.image} (busybox, offline), "
                f"with a web page in {self.web_root}")


def start(lab, fetch: bool = True) -> DockerInfo:
    """Start dockerd in `lab`'s host (fetching Debian's programs once if they are missing)."""
    if machine_docker.missing() and fetch:
        print(f"lablib: Docker's programs are missing; fetching Debian's packages into "
              f"{machine_docker.UNPACKED} once (nothing is installed)", file=sys.stderr)
        try:
            machine_docker.fetch(quiet=True)
        except (OSError, subprocess.CalledProcessError) as error:   # e.g. a project folder not ours
            raise errors.DockerUnavailable(f"could not fetch Docker's programs ({error}); "
                                           f"run {machine_docker.FETCH_HINT}") from None
    raw = lab.sandbox.request("docker_start", programs=machine_docker.programs())
    return DockerInfo(raw["version"], raw["storage"], raw["cgroup_driver"], raw["image"],
                      raw["web_root"], raw["seconds"])


SLIRP_RESOLV_CONF = "# slirp4netns's built-in DNS forwarder, as rootless podman writes it\nnameserver 10.0.2.3\n"


def slirp4netns(lab, ns: str):
    """Give namespace `ns` (made if missing) a network as rootless podman does: slirp4netns."""
    program = machine_docker.programs().get("slirp4netns")
    if program is None:
        raise errors.ToolMissing(f"slirp4netns is not on this machine; run {machine_docker.FETCH_HINT}")
    # Opened as the lab host's root, who may not be the machine's root (whatever starts the lab).
    if not lab.sh("exec 3<>/dev/net/tun", check=False).ok:
        raise errors.LabError("slirp4netns needs /dev/net/tun, which you may not open on this machine "
                              "(Debian makes it mode 0666): sudo chmod 0666 /dev/net/tun")
    if ns not in lab.namespaces():
        lab.sh(f"ip netns add {shlex.quote(ns)}")
    lab.sh(f"mkdir -p /etc/netns/{shlex.quote(ns)} && printf %s {shlex.quote(SLIRP_RESOLV_CONF)} "
           f"> /etc/netns/{shlex.quote(ns)}/resolv.conf")
    library = shlex.quote(machine_docker.library_path())
    # stdbuf: slirp4netns says it is ready on stdout, which a pipe would otherwise hold back.
    return lab.spawn(f"stdbuf -oL env LD_LIBRARY_PATH={library} {shlex.quote(program)} --configure --mtu=65520 "
                     f"--disable-host-loopback --netns-type=path /run/netns/{shlex.quote(ns)} tap0",
                     name=f"slirp4netns for {ns}", ready_text="Starting slirp")
