"""`lab.docker()`: real Docker in a lab host, started from the notebook.

The programs come from lablib/machine/docker.py (the machine's own, or Debian's unpacked
into the project); what runs inside the lab host is lablib/inside/docker.py.
"""
from __future__ import annotations

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
        except OSError as error:   # e.g. the project folder is not writable by this user
            raise errors.DockerUnavailable(f"could not fetch Docker's programs ({error}); "
                                           f"run {machine_docker.FETCH_HINT}") from None
    raw = lab.sandbox.request("docker_start", programs=machine_docker.programs())
    return DockerInfo(raw["version"], raw["storage"], raw["cgroup_driver"], raw["image"],
                      raw["web_root"], raw["seconds"])
