"""Root inside the lab, nobody special outside it — whoever starts the lab (root, a user
with a subordinate range, a user without), and the lab's writable places are its own.

Every test here runs as root and, through run_all.py, as both kinds of ordinary user.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, is_root

from lablib import Lab, SandboxUnavailable


def test_root_in_a_lab_cannot_change_a_global_sysctl(lab):
    machine = Path("/proc/sys/vm/swappiness")
    before = machine.read_text()
    wanted = (int(before) + 1) % 100
    done = lab.sh(f"sysctl -w vm.swappiness={wanted}", check=False)
    assert done.exit_code != 0
    assert "permission denied" in done.stderr.lower()
    assert machine.read_text() == before


def test_root_in_a_lab_is_an_unprivileged_user_outside(lab):
    outside_uid = Path(f"/proc/{lab.sandbox.init_pid()}/status").read_text().split("Uid:")[1].split()[0]
    assert lab.sh("id -u").stdout == "0\n"
    if is_root():
        assert int(outside_uid) >= 65536, "a root-started lab's root must not be the machine's root"
    else:
        assert int(outside_uid) == os.getuid()


def machine_folder() -> Path:
    """A folder of the machine this test's user may write, outside a lab's private places
    (a checkout under /tmp is inside one: in a lab, /tmp is the lab's own)."""
    if not str(ROOT).startswith(("/tmp/", "/var/tmp/")):
        return ROOT
    return Path("/var/lib") if is_root() else Path.home()


def test_the_machines_files_are_read_only_in_a_lab(lab):
    probe = machine_folder() / f"written-by-a-lab-{uuid.uuid4().hex[:8]}"
    try:
        done = lab.sh(f"touch {probe}", check=False)
        assert done.exit_code != 0
        assert not probe.exists()
    finally:
        probe.unlink(missing_ok=True)
    # The machine's /root, for a lab started by root: its /root is a private one.
    lab.sh("touch /root/from-the-lab")
    if is_root():
        assert not Path("/root/from-the-lab").exists()


def test_unmounting_the_labs_places_uncovers_nothing_writable(lab):
    name = f"uncovered-{uuid.uuid4().hex[:8]}"
    lab.sh(f"for d in /etc /tmp /root /var/tmp /run /dev/shm; do umount -l $d 2>/dev/null; "
           f"touch $d/{name} 2>/dev/null; done; true")
    # Whether the unmount was refused (root's labs: locked) or uncovered the read-only
    # machine (users' labs), nothing reached the machine's places.
    for place in ("/etc", "/tmp", "/var/tmp", "/run", "/dev/shm", *(["/root"] if is_root() else [])):
        assert not (Path(place) / name).exists()


def test_a_file_in_tmp_is_the_labs_own_and_gone_with_it():
    name = f"/tmp/x-{uuid.uuid4().hex[:8]}"
    with Lab(quiet=True) as first, Lab(quiet=True) as second:
        first.sh(f"echo first > {name}; echo home > ~/kept; echo v > /var/tmp/x")
        assert second.sh(f"cat {name}", check=False).exit_code != 0
        assert second.sh("cat ~/kept", check=False).exit_code != 0
        assert first.sh(f"cat {name}").stdout == "first\n"
        assert not Path(name).exists()
    with Lab(quiet=True) as third:
        assert third.sh(f"ls {name} ~/kept /var/tmp/x", check=False).exit_code != 0


def test_twenty_labs_writing_the_same_tmp_file_each_read_back_their_own():
    def one(index: int) -> str:
        with Lab(quiet=True) as lab:
            lab.sh(f"echo lab-{index} > /tmp/token-lab")
            return lab.sh("cat /tmp/token-lab").stdout.strip()

    with ThreadPoolExecutor(max_workers=5) as pool:
        tokens = list(pool.map(one, range(20)))
    assert tokens == [f"lab-{index}" for index in range(20)]


def test_commands_start_in_the_labs_own_home(lab):
    assert lab.sh("pwd; echo $HOME").stdout == "/root\n/root\n"
    lab.sh("echo note > notes.txt")
    assert lab.sh("cat /root/notes.txt").stdout == "note\n"
    assert not (Path.cwd() / "notes.txt").exists()


def test_the_machines_unix_sockets_are_not_reachable(lab):
    paths = [Path(tempfile.gettempdir()) / f"machine-{uuid.uuid4().hex[:8]}.sock"]
    if is_root():
        paths.append(Path("/run") / f"machine-{uuid.uuid4().hex[:8]}.sock")
    listeners = []
    try:
        for path in paths:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            os.chmod(path, 0o666)
            listener.listen()
            listeners.append(listener)
        for path in paths:
            done = lab.sh(f"python3 -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"{path}\")'",
                          check=False)
            assert done.exit_code != 0
            assert "FileNotFoundError" in done.stderr
    finally:
        for listener in listeners:
            listener.close()
        for path in paths:
            path.unlink(missing_ok=True)


def test_tcpdump_and_dnsmasq_run_as_typed(lab):
    capture = lab.spawn("tcpdump -i lo -n -c 1 icmp", ready_text="listening on lo")
    lab.sh("ping -c 1 127.0.0.1; for i in $(seq 100); do kill -0 %s 2>/dev/null || break; sleep 0.02; done"
           % capture.pid)
    assert "ICMP echo request" in capture.log(), capture.log()
    dnsmasq = lab.sh("timeout 1 dnsmasq --no-daemon --port 5353 --listen-address 127.0.0.1 --bind-interfaces",
                     check=False)
    assert dnsmasq.exit_code == 124, dnsmasq.stderr   # still running after 1 s: it started


def _copy_of_lablib(mode: int) -> Path:
    copy = Path(tempfile.mkdtemp(prefix="labkit-checkout-"))
    shutil.copytree(ROOT / "lablib", copy / "lablib", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [copy, *copy.rglob("*")]:
        path.chmod(mode if path.is_dir() else mode & 0o644)
    return copy


STARTS_A_LAB = textwrap.dedent("""
    import lablib
    from lablib import Lab
    with Lab(quiet=True) as lab:
        print(lablib.__file__, lab.sh(f"ls {lablib.__file__}; echo x > /tmp/y; cat /tmp/y").stdout)
    """)


def test_a_checkout_under_tmp_still_runs_its_labs():
    """CI clones under /tmp: the lab's private /tmp must not hide lablib or its Python."""
    copy = _copy_of_lablib(0o755)
    try:
        done = subprocess.run([sys.executable, "-c", STARTS_A_LAB], capture_output=True, text=True, timeout=120,
                              cwd=copy, env=dict(os.environ, PYTHONPATH=str(copy)))
        assert done.returncode == 0, done.stderr
        here = str(copy / "lablib" / "__init__.py")
        assert done.stdout.split() == [here, here, "x"]
    finally:
        shutil.rmtree(copy)


@pytest.mark.root_only
def test_root_is_told_when_its_lab_cannot_read_the_project():
    copy = _copy_of_lablib(0o700)
    try:
        done = subprocess.run([sys.executable, "-c", STARTS_A_LAB], capture_output=True, text=True, timeout=120,
                              cwd=copy, env=dict(os.environ, PYTHONPATH=str(copy)))
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert f"cannot read {copy}" in last and "chmod o+rX" in last
    finally:
        shutil.rmtree(copy)


@pytest.mark.root_only
def test_a_root_started_lab_cannot_make_the_machine_writable_again(lab):
    done = lab.sh("mount -o remount,bind,rw / 2>&1; umount -l /etc 2>&1; touch /etc/x-from-lab 2>&1 "
                  "|| echo refused", check=False)
    assert "refused" in done.stdout
    assert not Path("/etc/x-from-lab").exists()
    assert SandboxUnavailable   # the name is part of the API the message above uses


@pytest.mark.skipif(__import__("lablib.machine.ids", fromlist=["x"]).id_mapping() != "subids",
                    reason="for a user with a subordinate id range")
def test_a_broken_newuidmap_falls_back_to_a_single_uid_map(monkeypatch):
    from lablib.notebook import sandbox
    real = sandbox.tools.find
    monkeypatch.setattr(sandbox.tools, "find", lambda tool: "/bin/false" if tool == "newuidmap" else real(tool))
    with Lab(quiet=True) as lab:
        assert lab.sandbox.mapping == "single"
        assert lab.sh("cat /proc/self/uid_map").stdout.split() == ["0", str(os.getuid()), "1"]
