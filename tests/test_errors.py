"""What a learner can get wrong gets one line that says what happened and what to do,
within a bound — never a hang, never lablib's internals."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import ROOT

from lablib import (
    CommandFailed,
    CommandTimeout,
    Lab,
    NamespaceNotFound,
    SandboxUnavailable,
    WaitingForInput,
)
from lablib.cli import doctor
from lablib.machine import tools, userns
from lablib.notebook import sandbox


def test_unknown_namespace_names_the_ones_that_exist(lab):
    with pytest.raises(NamespaceNotFound, match="there are none yet"):
        lab.sh("true", ns="c1")
    lab.sh("ip netns add c1 && ip netns add c2")
    with pytest.raises(NamespaceNotFound, match=r"namespace 'c3' does not exist in this lab; existing: c1, c2"):
        lab.sh("true", ns="c3")


def test_typo_in_a_command_suggests_the_right_one(lab):
    with pytest.raises(CommandFailed, match=r"code 127.*did you mean 'ping'\?"):
        lab.sh("pign -c1 127.0.0.1")


def test_a_missing_system_tool_names_its_package(lab, monkeypatch):
    monkeypatch.setitem(tools.packages(), "frobnicate", "frob-tools")
    with pytest.raises(CommandFailed, match=r"'frobnicate' is not installed on this machine: sudo apt-get install frob-tools"):
        lab.sh("frobnicate --now")


def test_a_hanging_command_is_stopped_with_what_it_printed(lab):
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"still running after 1 s.*ping -c 3") as stopped:
        lab.sh("ping 203.0.113.1", timeout=1)
    assert time.monotonic() - started < 2.5
    assert "64 bytes from 203.0.113.1" in stopped.value.result.stdout
    assert "ping statistics" in stopped.value.result.stdout   # stopped as Ctrl-C would
    assert lab.sh("pgrep -x ping", check=False).exit_code == 1   # and really stopped


def test_a_command_ignoring_ctrl_c_is_killed(lab):
    with pytest.raises(CommandTimeout):
        lab.sh("trap '' INT; sleep 30", timeout=0.5)
    assert lab.sh("pgrep -x sleep", check=False).exit_code == 1


def test_a_command_waiting_for_keyboard_input_is_stopped_quickly(lab):
    started = time.monotonic()
    with pytest.raises(WaitingForInput, match=r"'cat' waited for keyboard input.*echo text \| CMD"):
        lab.sh("cat")
    assert time.monotonic() - started < 2
    assert lab.sh("echo fed | cat").stdout == "fed\n"


def test_huge_output_is_cut_off_and_said_so(lab):
    result = lab.sh("yes | head -c 5000000")
    assert len(result.stdout) == 1 << 20
    assert any("more bytes not kept" in note for note in result.notes)


def test_binary_output_is_not_shown(lab):
    result = lab.sh("head -c 2000 /dev/urandom")
    assert result.stdout == "" and any("binary output" in note for note in result.notes)
    assert len(result.stdout_bytes) == 2000


def test_background_children_do_not_hold_up_a_command(lab):
    started = time.monotonic()
    lab.sh("python3 -m http.server 8080 & sleep 30 &")
    assert time.monotonic() - started < 2
    lab.sh("for i in $(seq 50); do ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.05; done; curl -s localhost:8080 >/dev/null")
    for _ in range(50):   # the server's log line arrives through the job's own pipe
        if '"GET / HTTP/1.1" 200' in lab.background_output():
            break
        time.sleep(0.05)
    assert '"GET / HTTP/1.1" 200' in lab.background_output()


def test_a_server_that_cannot_start_says_why(lab):
    lab.spawn("python3 -m http.server 8080", ready_port=8080)
    with pytest.raises(Exception, match="exited with code 1 before it was ready.*Address already in use"):
        lab.spawn("python3 -m http.server 8080", ready_port=8080)


def test_missing_unshare_is_a_one_line_fix(monkeypatch):
    monkeypatch.setattr(sandbox.tools, "find", lambda tool: "/nonexistent/" + tool)
    with pytest.raises(SandboxUnavailable, match="sudo apt-get install util-linux"):
        Lab(quiet=True)


@pytest.mark.parametrize("sysctl, value, fix", [
    ("kernel.unprivileged_userns_clone", "0", "sudo sysctl -w kernel.unprivileged_userns_clone=1"),
    ("user.max_user_namespaces", "0", "sudo sysctl -w user.max_user_namespaces=15000"),
    ("kernel.apparmor_restrict_unprivileged_userns", "1", "AppArmor profile"),
])
def test_disabled_user_namespaces_name_their_fix(monkeypatch, sysctl, value, fix):
    monkeypatch.setattr(userns, "_sysctl", lambda name: value if name == sysctl else None)
    message = userns.explain_start_failure("unshare: unshare failed: Operation not permitted")
    assert fix in message and "vagrant up" in message


def test_doctor_reports_a_missing_tool_with_its_package(monkeypatch, capsys):
    monkeypatch.setattr(doctor.tools, "missing", lambda: {"conntrack": "conntrack"})
    assert doctor.run(quiet=True) == 1
    assert "sudo apt-get install conntrack" in capsys.readouterr().out


def test_doctor_passes_on_this_machine():
    done = subprocess.run([sys.executable, "-m", "lablib", "doctor"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready for the labs" in done.stdout
