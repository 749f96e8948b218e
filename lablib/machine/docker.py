"""Docker's programs for lab hosts: the machine's own, or Debian's unpacked into the project.

A lab host runs its own dockerd, containerd and runc (lablib/inside/docker.py). They come
from the machine when it has them (its running Docker, if any, is neither used nor
touched), otherwise from Debian's packages, fetched with `apt-get download` and unpacked
with `dpkg-deb -x` into `.docker-bin/` of the project — never installed, so no service
is started or enabled on the machine.

    python -m lablib.machine.docker fetch     # what `./labkit setup --docker` runs
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import tools

PROJECT = Path(__file__).resolve().parents[2]
UNPACKED = Path(os.environ.get("LABKIT_DOCKER_BIN", PROJECT / ".docker-bin"))

# Debian packages, and what each brings (paths inside the package).
PACKAGES = {
    "docker.io": {"dockerd": "usr/sbin/dockerd", "docker-proxy": "usr/sbin/docker-proxy",
                  "docker": "usr/bin/docker"},
    "containerd": {"containerd": "usr/bin/containerd",
                   "containerd-shim-runc-v2": "usr/bin/containerd-shim-runc-v2"},
    "runc": {"runc": "usr/sbin/runc"},
    "busybox-static": {"busybox": "bin/busybox"},
    # Rootless networking as podman does it (notebook 08): a namespace's own user-mode stack.
    "slirp4netns": {"slirp4netns": "usr/bin/slirp4netns"},
    "libslirp0": {"libslirp.so.0": f"usr/lib/{os.uname().machine}-linux-gnu/libslirp.so.0"},
}
DOCKER_PROGRAMS = ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker-proxy", "docker", "busybox")
FETCH_HINT = "./labkit setup --docker"


def _from_machine(program: str) -> str | None:
    if program == "busybox":
        # The image needs a static busybox: Debian's busybox-static installs it as busybox.
        path = tools.find("busybox")
        return path if path and _is_static(path) else None
    return tools.find(program)


def _is_static(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        return b"ld-linux" not in head and b"/lib64/ld" not in head
    except OSError:
        return False


def _unpacked(program: str) -> str | None:
    for package in PACKAGES.values():
        if program in package:
            path = UNPACKED / package[program]
            return str(path) if os.access(path, os.X_OK) else None
    return None


def programs() -> dict[str, str | None]:
    """Where each program a Docker lab needs is: the machine's dockerd set when it has
    one (with its own runc, containerd and docker), otherwise the unpacked Debian set."""
    machine = _from_machine("dockerd") is not None
    found: dict[str, str | None] = {}
    for program in (*DOCKER_PROGRAMS, "slirp4netns"):
        first, second = (_from_machine, _unpacked) if machine else (_unpacked, _from_machine)
        found[program] = first(program) or second(program)
    return found


def library_path() -> str:
    """Libraries unpacked with the programs (libslirp for slirp4netns), for LD_LIBRARY_PATH."""
    return str(UNPACKED / "usr/lib" / f"{os.uname().machine}-linux-gnu")


def missing() -> list[str]:
    return [name for name, path in programs().items() if path is None and name != "slirp4netns"]


def fetch(quiet: bool = False) -> list[str]:
    """Download Debian's packages and unpack their programs into UNPACKED.

    Returns the programs still missing afterwards (empty when all is well). Uses only
    `apt-get download` (no root, nothing installed, no service started) and `dpkg-deb -x`.
    """
    if not (tools.find("apt-get") and tools.find("dpkg-deb")):
        return missing()
    wanted = [name for name, files in PACKAGES.items()
              if any(not (UNPACKED / path).exists() for path in files.values())]
    if not wanted:
        return missing()
    UNPACKED.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-debs-") as folder:
        if not quiet:
            print(f"labkit: fetching Debian's {', '.join(wanted)} into {UNPACKED} (not installed; no service starts)",
                  file=sys.stderr)
        done = subprocess.run(["apt-get", "download", "-q", *wanted], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0 and not quiet:
            print(f"labkit: apt-get download failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        for deb in sorted(Path(folder).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(UNPACKED)], check=True)
    # Service files, configuration and documentation came too; nothing here uses them.
    for leftover in ("etc", "lib/systemd", "usr/lib/systemd", "usr/share"):
        shutil.rmtree(UNPACKED / leftover, ignore_errors=True)
    return missing()


def readiness() -> tuple[bool, str]:
    """Whether Docker labs can run here, in one line (for the doctor)."""
    absent = missing()
    if absent:
        return False, f"Docker labs need {', '.join(absent)}: run {FETCH_HINT} (downloads Debian's packages, installs nothing)"
    where = "the machine's" if _from_machine("dockerd") else f"Debian's, unpacked in {UNPACKED.name}/"
    return True, f"Docker labs can run: dockerd, containerd and runc are {where}"


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        still = fetch()
        if still:
            sys.exit(f"labkit: Docker labs will not run: {', '.join(still)} missing after the download")
        print(readiness()[1], file=sys.stderr)
    else:
        print(readiness()[1])
