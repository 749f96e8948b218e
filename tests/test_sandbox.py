"""The lab host as a sandbox: fresh, private, and gone without a trace however it ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import host_state
import pytest
from conftest import ROOT

from lablib import AgentDied, Lab


def sandbox_pids(lab: Lab) -> list[int]:
    """The unshare process and every process inside the sandbox, as the machine sees them."""
    return [lab.sandbox.process.pid, lab.sandbox.init_pid(),
            *[int(p) for p in Path(f"/proc/{lab.sandbox.init_pid()}/task/{lab.sandbox.init_pid()}/children").read_text().split()]]


def gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.01)
    return False


def _state(pid: int) -> str:
    try:
        return next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("State"))
    except (OSError, StopIteration):
        return "zombie"


def test_a_new_lab_host_starts_like_a_fresh_linux_host(lab):
    assert lab.sh("ip netns list").stdout == ""
    assert lab.sh("cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert lab.sh("cat /proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "1"
    assert ":FORWARD ACCEPT" in lab.sh("iptables-save -t filter").stdout
    assert "-A " not in lab.sh("iptables-save").stdout
    assert lab.sh("hostname").stdout.strip() == "lab-host"
    assert lab.sh("id -u").stdout.strip() == "0"
    links = lab.sh("ip -o link show | awk -F': ' '{print $2}'").stdout.split()
    assert [name.split("@")[0] for name in links] == ["lo", "eth0"]


@pytest.mark.root_only
def test_a_lab_host_starts_with_forwarding_off_even_on_a_docker_machine():
    """New namespaces copy IPv4 settings from the machine's; the lab host must not."""
    machine = Path("/proc/sys/net/ipv4/ip_forward")
    original = machine.read_text()
    try:
        machine.write_text("1\n")
        with Lab(quiet=True) as lab:
            assert lab.sh("sysctl -n net.ipv4.ip_forward").stdout == "0\n"
    finally:
        machine.write_text(original)


# Overlays stack at most two deep: /etc already an overlay of an overlay (as in a
# container started inside a container) leaves the lab host's own /etc overlay no room.
NESTED_ETC = """
mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/u1,workdir={0}/w1 /etc &&
mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/u2,workdir={0}/w2 /etc &&
exec "$@"
"""


@pytest.mark.root_only
def test_a_start_up_note_reaches_the_learner_in_the_summary(tmp_path):
    for name in ("u1", "w1", "u2", "w2"):
        (tmp_path / name).mkdir()
    started = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", NESTED_ETC.format(tmp_path), "sh",
         sys.executable, "-c", "from lablib import Lab; lab = Lab(); print(lab.sh('getent hosts example.com').stdout)"],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "\nnote: /etc overlay unavailable (mount overlay on /etc: Invalid argument)" in started.stdout
    assert started.stdout.split()[-2:] == ["198.51.100.10", "example.com"]   # and the lab host works on


def test_a_lab_host_without_start_up_notes_says_nothing_more(lab):
    assert lab.sandbox.notes == []
    assert "note:" not in lab.summary()


def test_the_lab_host_is_not_the_machine(lab):
    machine_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    lab.sh("ip link add lab-only type bridge")
    assert "lab-only" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout == machine_links
    lab.sh("ip netns add only-in-the-lab")
    assert "only-in-the-lab" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    lab.sh("echo 'nameserver 192.0.2.99' > /etc/resolv.conf")
    assert "192.0.2.99" not in Path("/etc/resolv.conf").read_text()


def test_close_ends_every_process_of_the_sandbox():
    lab = Lab(quiet=True)
    lab.sh("ip netns add c1")
    lab.spawn("sleep 300", ns="c1")
    pids = sandbox_pids(lab)
    lab.close()
    assert gone(pids, within=1.0)
    assert not lab.alive


def test_reset_gives_a_fresh_host_in_the_same_object(lab):
    lab.sh("ip netns add c1 && ip link add br0 type bridge")
    old = sandbox_pids(lab)
    lab.reset()
    assert gone(old, within=1.0)
    assert lab.sh("ip netns list").stdout == ""
    assert "br0" not in lab.sh("ip link").stdout
    assert "Hello from example.com" in lab.sh("curl -s example.com").stdout


def test_with_block_closes_the_lab():
    with Lab(quiet=True) as lab:
        pids = sandbox_pids(lab)
    assert gone(pids, within=1.0)


def test_a_forgotten_lab_is_closed_when_garbage_collected():
    lab = Lab(quiet=True)
    pids = sandbox_pids(lab)
    del lab
    import gc
    gc.collect()
    assert gone(pids, within=1.0)


def test_two_labs_in_one_process_with_the_same_names_do_not_see_each_other():
    with Lab(quiet=True) as first, Lab(quiet=True) as second:
        for lab, address in ((first, "10.0.0.1/24"), (second, "10.0.0.1/24")):
            lab.sh(f"ip netns add c1 && ip link add br0 type bridge && ip addr add {address} dev br0")
        first.sh("ip netns add only-first")
        first.spawn("python3 -m http.server 8080", ready_port=8080)
        assert "only-first" not in second.sh("ip netns list").stdout
        assert second.sh("curl -s -m 2 127.0.0.1:8080", check=False).exit_code == 7
        second.spawn("python3 -m http.server 8080", ready_port=8080)   # the same port is free there


def test_two_labs_in_two_processes_do_not_see_each_other(lab):
    lab.sh("ip netns add c1 && ip netns add mine")
    other = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from lablib import Lab
        with Lab(quiet=True) as lab:
            lab.sh("ip netns add c1")
            print(lab.sh("ip netns list").stdout.split())
        """)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert other.stdout.strip() == "['c1']", other.stderr
    assert sorted(lab.sh("ip netns list").stdout.split()) == ["c1", "mine"]


HOLDER = """
import sys
from lablib import Lab
lab = Lab(quiet=True)
lab.sh("ip netns add c1 && ip link add br0 type bridge && iptables -t nat -A POSTROUTING -j MASQUERADE")
lab.spawn("python3 -m http.server 8080", ns="c1")
print(lab.sandbox.process.pid, lab.sandbox.init_pid(), flush=True)
lab.sh("sleep 300", timeout=600)
"""


def test_sigkill_of_the_holding_process_mid_command_leaves_nothing():
    before = host_state.capture()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pids = [int(p) for p in holder.stdout.readline().split()]
    assert pids, "the holder did not start its lab"
    time.sleep(0.2)   # let `sleep 300` start: the kill lands mid-command
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert gone(pids, within=1.0)
    assert host_state.differences(before, host_state.capture()) == []


def test_a_dead_agent_is_reported_and_reset_recovers(lab):
    agent = int(Path(f"/proc/{lab.sandbox.init_pid()}/task/{lab.sandbox.init_pid()}/children").read_text().split()[0])
    os.kill(agent, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(AgentDied, match="lab.reset"):
        for _ in range(100):   # the first call may race the death notice
            lab.sh("true")
            time.sleep(0.01)
    assert time.monotonic() - started < 2
    lab.reset()
    assert lab.sh("echo back").stdout == "back\n"


INTERRUPTED_HOLDER = """
from lablib import Lab
lab = Lab(quiet=True)
lab.sh("ip netns add c1")
started = []
def show(stream, data):
    if not started:
        started.append(1)
        print("pinging", flush=True)
try:
    lab.sh("ping -i 0.2 example.com", timeout=120, on_output=show)
    print("ping ended by itself", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print(lab.sh("ip netns list").stdout.split()[0], lab.sh("echo next").stdout.strip(), flush=True)
"""


def test_an_interrupt_of_the_whole_process_group_stops_the_command_and_keeps_the_lab_host():
    """Jupyter's ■ sends SIGINT to the kernel's process group: only the command may stop."""
    holder = subprocess.Popen([sys.executable, "-c", INTERRUPTED_HOLDER], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "pinging", holder.stderr.read()
        os.killpg(holder.pid, signal.SIGINT)
        out, err = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert out.split("\n")[:2] == ["interrupted", "c1 next"], err
