"""Per-lab limits: a fork bomb or a memory hog stops at its own lab host's limit, with a
one-line message for that learner, and another lab of the same user keeps working."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import ROOT

from lablib import Lab, LabError, LimitReached
from lablib.machine.limits import Limits

BOMB = "bomb() { bomb | bomb & }; bomb"


def tasks_in(lab: Lab) -> int:
    """Processes and threads in the lab host's PID namespace, as the machine sees them."""
    namespace = os.stat(f"/proc/{lab.sandbox.init_pid()}/ns/pid").st_ino
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == namespace:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def test_limits_are_shown_in_the_summary_and_configurable(capsys):
    with Lab(max_processes=100, max_memory="300M") as lab:
        summary = capsys.readouterr().out
        assert "at most 100 processes, 300 MiB of memory" in summary
        assert lab.sh("ulimit -u").stdout.strip() == "100"


def test_a_fork_bomb_is_contained_and_another_lab_of_the_same_user_keeps_working():
    with Lab(quiet=True, max_processes=64) as bombed, Lab(quiet=True, max_processes=64) as other:
        outcome: dict = {}

        def run_bomb() -> None:
            try:
                bombed.sh(f"{BOMB}; sleep 30", timeout=5)
            except LabError as error:
                outcome["error"] = error

        thread = threading.Thread(target=run_bomb)
        thread.start()
        try:
            # Wait (no clock involved) until the bomb fills its lab to the limit.
            seen = 0
            while seen < 56 and thread.is_alive():
                seen = max(seen, tasks_in(bombed))
                threading.Event().wait(0.01)
            assert seen >= 56
            # Meanwhile the other lab starts 40 processes at once and answers.
            done = other.sh("for i in $(seq 40); do sleep 0.3 & done; wait; echo other-ok")
            assert done.stdout == "other-ok\n"
        finally:
            thread.join()
        assert isinstance(outcome.get("error"), LimitReached)
        message = str(outcome["error"])
        assert "limit of 64 processes" in message and "\n" not in message
        # The bomb was stopped with its command; its own lab works again.
        assert bombed.sh("echo back").stdout == "back\n"


def test_a_lab_full_of_processes_says_reset_and_reset_recovers(lab):
    small = Lab(quiet=True, max_processes=48)
    try:
        # Processes that outlive their command (each in a session of its own) fill the lab.
        with pytest.raises(LabError, match="limit of 48 processes"):
            small.sh("for i in $(seq 60); do setsid sleep 1000 & done; wait", timeout=3)
        with pytest.raises(LabError, match=r"limit of 48 processes.*lab\.reset\(\)"):
            for _ in range(200):   # the agent may still find a process or two to spare
                small.sh("true", check=False)
        assert lab.sh("echo fine").stdout == "fine\n"   # another lab never noticed
        small.reset()
        assert small.sh("echo fresh").stdout == "fresh\n"
    finally:
        small.close()


def test_a_memory_hog_ends_in_a_clear_message_and_others_keep_working():
    with Lab(quiet=True, max_memory="256M") as hog, Lab(quiet=True) as other:
        with pytest.raises(LimitReached, match=r"ran out of memory: this lab host allows 256 MiB") as stopped:
            hog.sh("python3 -c 'x = bytearray(1 << 30)'")
        assert "\n" not in str(stopped.value)
        assert hog.sh("echo still-here").stdout == "still-here\n"
        assert other.sh("python3 -c 'print(len(bytearray(1 << 29)))'").stdout == f"{1 << 29}\n"


@pytest.mark.parametrize("arguments, complaint", [
    ({"max_processes": 0}, "at least 32"),
    ({"max_processes": "many"}, "whole number"),
    ({"max_memory": "lots"}, "not a size"),
    ({"max_memory": "1M"}, "at least 64M"),
])
def test_impossible_limits_are_refused_in_one_line(arguments, complaint):
    with pytest.raises(LabError, match=complaint) as refused:
        Lab(quiet=True, **arguments)
    assert "\n" not in str(refused.value)


def test_a_workshop_sets_default_limits_in_the_environment(monkeypatch):
    monkeypatch.setenv("LABLIB_MAX_PROCESSES", "200")
    monkeypatch.setenv("LABLIB_MAX_MEMORY", "768M")
    limits = Limits.of()
    assert (limits.processes, limits.memory) == (200, 768 << 20)
    with Lab(quiet=True) as lab:
        assert lab.sh("ulimit -u").stdout.strip() == "200"


SCOPE_HOLDER = textwrap.dedent("""
    from lablib import Lab
    lab = Lab(quiet=True)
    print(open(f"/proc/{lab.sandbox.process.pid}/cgroup").read().split("0::")[1].strip(), flush=True)
    lab.sh("sleep 300", timeout=600)
    """)


@pytest.mark.skipif(not Limits().by_cgroup, reason="no cgroup v2 with delegated pids/memory here: rlimits apply")
def test_a_labs_cgroup_is_gone_after_close_and_after_kill_9():
    with Lab(quiet=True) as lab:
        path = Path("/sys/fs/cgroup" + Path(f"/proc/{lab.sandbox.process.pid}/cgroup").read_text()
                    .split("0::")[1].strip())
        assert (path / "pids.max").read_text().strip() == str(lab.limits.processes)
    holder = subprocess.Popen([sys.executable, "-c", SCOPE_HOLDER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    killed = Path("/sys/fs/cgroup" + holder.stdout.readline().strip())
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    for _ in range(200):
        if not path.exists() and not killed.exists():
            break
        threading.Event().wait(0.02)
    assert not path.exists() and not killed.exists()
