"""Every timeout holds, whatever a command does with its output or signals, and a lab's
start can be cut off at any instant — SIGKILL or Ctrl-C — with nothing left running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from lablib import CommandTimeout

MARK = "LABKIT_TEST_RUN"
# How many `sleep`s still run — after giving killed ones a moment to finish dying (bounded).
SLEEPING = ("for i in $(seq 100); do n=$(ps -e -o stat=,comm= | grep -v ^Z | grep -cw sleep); "
            "[ $n = 0 ] && break; sleep 0.02; done; echo $n")


def test_a_command_that_closes_its_output_still_stops_at_its_timeout(lab):
    # Were the timeout not enforced after the output closed, the runner would wait for
    # `sleep 1000` and the notebook side would give up with "did not answer" instead.
    with pytest.raises(CommandTimeout, match="still running after 2 s"):
        lab.sh("exec >/dev/null 2>&1; sleep 1000", timeout=2)
    assert lab.sh(SLEEPING).stdout == "0\n"   # nothing left running


def test_a_command_ignoring_ctrl_c_with_its_output_closed_is_killed(lab):
    with pytest.raises(CommandTimeout):
        lab.sh("exec >/dev/null 2>&1; trap '' INT TERM; sleep 1000", timeout=1)
    assert lab.sh(SLEEPING).stdout == "0\n"


INTERRUPTED = textwrap.dedent("""
    import sys
    SLEEPING = ("for i in $(seq 500); do n=$(ps -e -o stat=,comm= | grep -v ^Z | grep -cw sleep); "
                "[ $n = 0 ] && break; sleep 0.02; done; echo $n")
    from lablib import Lab
    lab = Lab(quiet=True)
    def started(stream, data):
        print("started", flush=True)
    try:
        lab.sh("echo go; exec >/dev/null 2>&1; sleep 1000", on_output=started, timeout=600)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    print("left:", lab.sh(SLEEPING).stdout.strip(), flush=True)
    lab.close()
    """)


def test_the_first_ctrl_c_stops_a_command_even_with_its_output_closed():
    script = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert script.stdout.readline().strip() == "started"
        script.send_signal(signal.SIGINT)   # once
        rest = script.stdout.read().split("\n")
    finally:
        script.kill()
        script.wait()
    assert rest[:2] == ["interrupted", "left: 0"]


def marked_processes(mark: str, but: int | None = None) -> list[str]:
    """Processes carrying `mark` in their environment, and any in their user namespaces."""
    wanted = f"{MARK}={mark}".encode()
    own_userns = os.stat("/proc/self/ns/user").st_ino
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (os.getpid(), but):
            continue
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            userns = os.stat(f"/proc/{entry}/ns/user").st_ino
            marked = wanted in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if command and state != "Z":
            table[entry] = (command, userns, marked)
    namespaces = {userns for _, userns, marked in table.values() if marked and userns != own_userns}
    return [f"{pid} {command}" for pid, (command, userns, marked) in table.items() if marked or userns in namespaces]


def settled(mark: str, but: int | None = None, rounds: int = 300) -> list[str]:
    """What is left of `mark`'s processes once they had a moment to end (bounded)."""
    for _ in range(rounds):
        left = marked_processes(mark, but)
        if not left:
            return []
        time.sleep(0.01)
    return left


STARTS = textwrap.dedent("""
    import sys
    from lablib import Lab
    print("go", flush=True)
    try:
        lab = Lab(quiet=True)
    except KeyboardInterrupt:
        saved = sys.exc_info()   # as Jupyter keeps the traceback (and every frame in it)
        print("interrupted", flush=True)
        sys.stdin.read()
        sys.exit(0)
    print("built", flush=True)
    lab.close()
    sys.stdin.read()
    """)

# Every millisecond of the first 10 ms of Lab(), then later moments of its start.
MOMENTS_MS = [*range(11), 15, 20, 30, 45, 70, 100, 150, 220]


def test_sigkill_at_any_moment_of_a_labs_start_leaves_nothing(tmp_path):
    for moment in MOMENTS_MS:
        mark = f"start-kill-{os.getpid()}-{moment}"
        # Its own TMPDIR: Python's tempfile leaves its probe file behind when killed mid-probe.
        script = subprocess.Popen([sys.executable, "-c", STARTS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT, env=dict(os.environ, **{MARK: mark, "TMPDIR": str(tmp_path)}))
        assert script.stdout.readline().strip() == "go"
        time.sleep(moment / 1000)
        script.kill()
        script.wait()
        assert settled(mark) == [], f"left after SIGKILL {moment} ms into Lab()"


def test_ctrl_c_at_any_moment_of_a_labs_start_leaves_no_half_built_lab(tmp_path):
    for moment in MOMENTS_MS:
        mark = f"start-int-{os.getpid()}-{moment}"
        script = subprocess.Popen([sys.executable, "-c", STARTS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT, env=dict(os.environ, **{MARK: mark, "TMPDIR": str(tmp_path)}))
        try:
            assert script.stdout.readline().strip() == "go"
            time.sleep(moment / 1000)
            script.send_signal(signal.SIGINT)
            outcome = script.stdout.readline().strip()
            # The interrupted process lives on, holding the traceback: its lab must be gone.
            assert settled(mark, but=script.pid) == [], f"left after Ctrl-C {moment} ms into Lab() ({outcome})"
        finally:
            script.stdin.close()
            script.wait(30)
