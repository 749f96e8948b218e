"""Inside the sandbox: real Docker — dockerd, containerd, runc — running in the lab host.

Docker here is the real thing, with every path of its own inside the lab host, so it
builds its bridge, veths, iptables chains and docker-proxy processes in the lab host's
kernel state, where drawings, tables, traces and checks see them, and goes with the lab:

- its data root, exec root and socket (/run/docker.sock, so `docker` works as typed) are
  in the lab host's private /run;
- cgroups: the lab host's fresh /sys hides the machine's cgroup mounts, but /proc/mounts
  still lists them, so runc would look for them. A cgroup2 mounted *read-only* from a new
  cgroup namespace, with `dockerd --rootless`, gives "Cgroup Driver: none": networking is
  the same, resource limits (--memory, --cpus) do not apply. Nothing is written to the
  machine's cgroup tree, so nothing can be left there;
- runc always runs as `runc --rootless=true` (a wrapper first on dockerd's PATH): a lab
  host's root is never the machine's root, whatever the uid map looks like;
- where group 5 (tty) is not mapped (a lab started without a subordinate id range), the
  wrapper drops `gid=5` from the container's /dev/pts mount, which would fail otherwise;
- /etc/docker is a tmpfs of the lab host (the machine's may belong to an unmapped owner);
- dockerd sees `nameserver 127.0.0.53`, assumes systemd-resolved and reads
  /run/systemd/resolve/resolv.conf, which points at the outside world's DNS server, as
  on a real Ubuntu host;
- the image is made offline from a static busybox (`docker import`): no registry needed.

Containers' network namespaces are attached under their container names (`ip netns
attach NAME PID`) after every command, so they appear wherever namespaces do; the
container's resolv.conf and hosts become /etc/netns/NAME/'s, so that `ip netns exec NAME`
resolves names as the container itself does.
"""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

from ..machine import tools
from ..model.errors import DockerUnavailable
from ..model.world import DNS
from .labhost import RUN, SHIMS

HOME = RUN / "docker"                 # data root, exec root, wrappers
WRAPPERS = HOME / "bin"               # first on dockerd's PATH
SOCKET = Path("/run/docker.sock")     # Docker's default, in the lab host's own /run
RESOLVED = Path("/run/systemd/resolve/resolv.conf")
IMAGE = "busybox:latest"
WEB_ROOT = "/var/www"                 # in the image: httpd -f -p 80 -h /var/www
WEB_PAGE = "<h1>Hello from a Docker container in your lab host</h1>\n"
START_TIMEOUT = 60.0

RUNC_WRAPPER = """#!/bin/sh
# runc for a lab host: always rootless (the lab host's root is not the machine's root).
@PATCH@exec @REAL@ --rootless=true "$@"
"""
# Without group 5 in the lab host's id map, mounting /dev/pts with gid=5 fails: drop it.
PATCH_DEVPTS = """bundle=; prev=
for arg; do [ "$prev" = --bundle ] || [ "$prev" = -b ] && bundle=$arg; prev=$arg; done
[ -n "$bundle" ] && [ -f "$bundle/config.json" ] && sed -i 's/,"gid=5"//' "$bundle/config.json"
"""


def _mapped(kind: str, ident: int) -> bool:
    for line in Path(f"/proc/self/{kind}_map").read_text().splitlines():
        inside, _, count = map(int, line.split())
        if inside <= ident < inside + count:
            return True
    return False


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def api(path: str, method: str = "GET", body: bytes | None = None, timeout: float = 10.0):
    """Ask dockerd's Engine API (the same socket the `docker` command uses)."""
    connection = _UnixHTTP(str(SOCKET), timeout)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/x-tar"} if body else {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status >= 400:
        raise DockerUnavailable(f"dockerd answered {response.status} to {method} {path}: {data[:200]!r}")
    return json.loads(data) if data[:1] in (b"{", b"[") else data


def _image_tar(busybox: str) -> bytes:
    """A root filesystem of one static busybox, its applets linked in /bin, and a web page."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        for name in ("bin", "etc", "var", "var/www", "root", "proc", "sys", "dev"):
            add_dir(name)
        add_dir("tmp", 0o1777)
        # Owned by the image's root, whoever owns the file here (maybe an id the lab does not map).
        tar.add(busybox, arcname="bin/busybox", filter=_owned_by_root)
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        for name, text in ((f"{WEB_ROOT.lstrip('/')}/index.html", WEB_PAGE),
                           ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755
    return info


class Docker:
    """dockerd (and the containerd it starts) in this lab host, and its containers' namespaces."""

    def __init__(self, runner, programs: dict[str, str | None]) -> None:
        self.runner = runner
        self.programs = programs
        self.daemon = None
        self.attached: dict[str, str] = {}    # namespace name -> container id
        self._seen: dict[str, dict] = {}      # container id -> its process and files, once inspected
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.daemon is not None and self.daemon.process.poll() is None

    def start(self) -> dict:
        """Start dockerd (once), import the image, and return what a learner should know."""
        if self.running:
            return self.info(already=True)
        absent = [name for name in ("dockerd", "containerd", "containerd-shim-runc-v2", "runc",
                                    "docker-proxy", "docker", "busybox") if not self.programs.get(name)]
        if absent:
            raise DockerUnavailable(f"Docker's programs are not on this machine ({', '.join(absent)}); "
                                    "run ./labkit setup --docker (downloads Debian's packages, installs nothing)")
        started = time.monotonic()
        self._prepare()
        argv = ["env", f"PATH={WRAPPERS}:{tools.SYSTEM_PATH}", self.programs["dockerd"],
                "--rootless", "--group", "root",
                "--data-root", str(HOME / "data"), "--exec-root", str(HOME / "exec"),
                "--pidfile", str(HOME / "dockerd.pid"), "--host", f"unix://{SOCKET}"]
        self.daemon = self.runner.spawn("dockerd", None, name="dockerd", argv=argv)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.daemon.process.poll() is not None:
                log = bytes(self.daemon.log).decode(errors="replace").strip().splitlines()
                raise DockerUnavailable("dockerd stopped while starting"
                                        + (f": {log[-1][:300]}" if log else "") + "; see lab.processes()")
            try:
                if api("/_ping", timeout=1.0) == b"OK":
                    break
            except (OSError, http.client.HTTPException, DockerUnavailable):
                pass
            if time.monotonic() > deadline:
                raise DockerUnavailable(f"dockerd did not answer within {START_TIMEOUT:.0f} s; see lab.processes()")
            time.sleep(0.02)
        api("/images/create?fromSrc=-&repo=busybox&tag=latest"
            "&changes=ENV%20PATH%3D%2Fbin&changes=CMD%20%5B%22sh%22%5D",
            method="POST", body=_image_tar(self.programs["busybox"]), timeout=60.0)
        return self.info(seconds=time.monotonic() - started)

    def _prepare(self) -> None:
        for directory in (WRAPPERS, RESOLVED.parent):
            directory.mkdir(parents=True, exist_ok=True)
        # A read-only cgroup2, seen from a cgroup namespace of its own (see the module's notes).
        subprocess.run(["unshare", "--cgroup", "mount", "-t", "cgroup2", "-o", "ro,nosuid,nodev,noexec",
                        "cgroup2", "/sys/fs/cgroup"], check=True, capture_output=True)
        Path("/etc/docker").mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", "/etc/docker"],
                       check=True, capture_output=True)
        RESOLVED.write_text(f"# the outside world's DNS server, as systemd-resolved would list it\n"
                            f"nameserver {DNS.address}\n")
        runc = RUNC_WRAPPER.replace("@REAL@", self.programs["runc"]).replace(
            "@PATCH@", "" if _mapped("gid", 5) else PATCH_DEVPTS)
        (WRAPPERS / "runc").write_text(runc)
        (WRAPPERS / "runc").chmod(0o755)
        for name in ("containerd", "containerd-shim-runc-v2", "docker-proxy", "docker"):
            (WRAPPERS / name).symlink_to(self.programs[name])
        # The learner's `docker` is the one that came with this dockerd, and keeps its
        # settings in the lab host: not the machine user's ~/.docker, nor its contexts.
        (SHIMS / "docker").unlink(missing_ok=True)
        (SHIMS / "docker").symlink_to(self.programs["docker"])
        (HOME / "client").mkdir(exist_ok=True)
        self.runner.env["DOCKER_CONFIG"] = str(HOME / "client")

    def info(self, seconds: float | None = None, already: bool = False) -> dict:
        version = api("/version")
        system = api("/info")
        return {"version": version.get("Version"), "api": version.get("ApiVersion"),
                "storage": system.get("Driver"), "cgroup_driver": system.get("CgroupDriver"),
                "image": IMAGE, "web_root": WEB_ROOT, "seconds": seconds, "already": already,
                "pid": self.daemon.process.pid}

    # -- containers as namespaces ------------------------------------------------------
    def attach(self) -> list[str]:
        """Make each running container's network namespace visible under its name, and
        forget those of containers that are gone. Returns the attached names."""
        if not self.running:
            return []
        with self._lock:
            try:
                containers = api("/containers/json", timeout=5.0)
            except (OSError, http.client.HTTPException, DockerUnavailable):
                return sorted(self.attached)
            host_netns = os.stat("/proc/self/ns/net").st_ino
            wanted: dict[str, str] = {}
            seen_netns: set[int] = set()
            # Oldest first, and never one that joined another's namespace (--network
            # container:X): the namespace is shown under the name of the container that made it.
            for container in sorted(containers, key=lambda c: c.get("Created", 0)):
                if container.get("HostConfig", {}).get("NetworkMode", "").startswith("container:"):
                    continue
                name = container["Names"][0].lstrip("/") if container.get("Names") else container["Id"][:12]
                pid = self._pid(container["Id"])
                try:
                    netns = os.stat(f"/proc/{pid}/ns/net").st_ino if pid else None
                except OSError:
                    netns = None
                # --network host (the lab host's own) or container:X (already shown): nothing new.
                if netns is None or netns == host_netns or netns in seen_netns:
                    continue
                seen_netns.add(netns)
                wanted[name] = container["Id"]
                if self.attached.get(name) == container["Id"]:
                    continue
                if name in self.attached:
                    self._detach(name)
                elif Path("/run/netns", name).exists():
                    continue        # the learner's own namespace of that name stays theirs
                done = subprocess.run(["ip", "netns", "attach", name, str(pid)], capture_output=True)
                if done.returncode == 0:
                    self.attached[name] = container["Id"]
                    self._share_files(name, self._seen[container["Id"]])
            for name in [n for n in self.attached if n not in wanted]:
                self._detach(name)
            for gone in [i for i in self._seen if i not in wanted.values()]:
                self._seen.pop(gone)
            return sorted(self.attached)

    def _pid(self, container_id: str) -> int | None:
        if container_id not in self._seen:
            try:
                found = api(f"/containers/{container_id}/json", timeout=5.0)
            except (OSError, http.client.HTTPException, DockerUnavailable):
                return None
            if not found.get("State", {}).get("Pid"):
                return None
            self._seen[container_id] = {"pid": found["State"]["Pid"], "resolv.conf": found.get("ResolvConfPath"),
                                        "hosts": found.get("HostsPath")}
        return self._seen[container_id]["pid"]

    @staticmethod
    def _share_files(name: str, seen: dict) -> None:
        """The container's resolv.conf and hosts as /etc/netns/NAME/ files, so that
        `ip netns exec NAME` (and %%lab NAME, and checks) resolve names as the container does."""
        folder = Path("/etc/netns") / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for file in ("resolv.conf", "hosts"):
                if seen.get(file) and Path(seen[file]).exists():
                    (folder / file).write_text(Path(seen[file]).read_text())
        except OSError:
            pass   # no /etc/netns here (no /etc overlay): host tools then use the host's files

    def _detach(self, name: str) -> None:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
        self.attached.pop(name, None)
