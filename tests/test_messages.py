"""Every mistake a learner can make gets one line, in the learner's terms, saying what
happened and what to do — never a lablib traceback, a whole script, or a silent default."""
from __future__ import annotations

import pytest

from lablib import CommandFailed, Lab, LabError, expect


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    assert "lablib agent failed" not in text and "Traceback" not in text, text
    assert len(text) < 400, text
    return text


def test_a_failing_build_names_the_command_and_the_real_cause(lab):
    lab.build(["c1"])
    with pytest.raises(CommandFailed) as failed:
        lab.build(["c1"], bridge="br1", subnet="10.1.0.0/24")
    text = one_line(failed.value)
    assert "`ip netns add c1` failed" in text and "File exists" in text
    assert "EOF" not in text and "set -e" not in text


def test_container_names_over_15_characters_are_refused_up_front(lab):
    with pytest.raises(LabError, match="too long.*at most 15") as refused:
        lab.build(["averyveryverylongname1", "averyveryverylongname2"])
    one_line(refused.value)
    assert lab.namespaces() == []   # refused before anything was made


def test_names_whose_interfaces_would_collide_when_cut_are_refused(lab):
    with pytest.raises(LabError, match="would both get the interface veth-netns_dust") as refused:
        lab.build(["netns_dustin1", "netns_dustin2"])
    one_line(refused.value)
    assert lab.namespaces() == []


def test_rebuilding_right_after_deleting_the_namespaces_works(lab):
    for _ in range(15):
        lab.build(["c1", "c2"])
        lab.sh("ip netns del c1; ip netns del c2; ip link del br0")
    lab.build(["c1", "c2"])
    assert lab.sh("ping -c1 -W2 10.0.0.3", ns="c1").ok


@pytest.mark.parametrize("call, complaint", [
    (lambda lab: lab.sh("echo a\0b"), "NUL byte"),
    (lambda lab: lab.sh("true", ns=123), "ns names a namespace"),
    (lambda lab: lab.sh(None), "a command is a string"),
    (lambda lab: lab.sh("sleep 1", timeout=0), "above 0"),
    (lambda lab: lab.sh("sleep 1", timeout=-1), "above 0"),
    (lambda lab: lab.check("x", "junk"), "claims made with expect"),
    (lambda lab: lab.build(300), "no room for 300 containers"),
    (lambda lab: lab.build(0), "at least one container"),
    (lambda lab: lab.spawn("sleep 100", ready_port=70000), "from 1 to 65535"),
])
def test_impossible_requests_are_refused_in_one_line(lab, call, complaint):
    with pytest.raises(LabError, match=complaint) as refused:
        call(lab)
    one_line(refused.value)


def test_a_command_over_128_kib_runs(lab):
    lines = "".join(f"echo line {i}\n" for i in range(12000))   # ~150 KB: over Linux's limit for one argument
    assert len(lines) > 128 * 1024
    done = lab.sh(lines + "echo done")
    assert done.stdout.splitlines()[-1] == "done" and len(done.stdout.splitlines()) == 12001
    lab.sh("ip netns add c1")
    assert lab.sh(lines + "ip link show lo | head -1", ns="c1").ok
    assert lab.sh("ls /run/lablib/scripts").stdout == ""   # its file went with it


def test_a_large_lab_cell_runs():
    from IPython.testing.globalipapp import get_ipython

    from lablib.notebook.magics import run_magic
    get_ipython()
    with Lab(quiet=True):
        cell = "".join(f"x{i}=1\n" for i in range(30000)) + "echo cell-ran > /tmp/proof"
        run_magic("", cell)
        from lablib.notebook.magics import current_lab
        assert current_lab().sh("cat /tmp/proof").stdout == "cell-ran\n"


@pytest.mark.parametrize("command, program", [
    ("vim /etc/hosts", "vim"), ("vi x", "vi"), ("nano /etc/hosts", "nano"), ("less /etc/hosts", "less"),
    ("top", "top"), ("htop", "htop"), ("man ip", "man"), ("sudo vim /etc/hosts", "vim"),
])
def test_full_screen_programs_are_recognised_at_once_with_a_hint(lab, command, program):
    with pytest.raises(LabError) as refused:
        lab.sh(command)
    text = one_line(refused.value)
    assert f"'{program}' is an interactive full-screen program" in text
    assert "python -m lablib shell" in text


def test_the_same_programs_run_when_they_need_no_screen(lab):
    assert "localhost" in lab.sh("less /etc/hosts | cat").stdout
    assert "load average" in lab.sh("top -b -n 1 | head -1").stdout


def test_a_server_handle_from_before_a_reset_says_so(lab):
    server = lab.spawn("sleep 100", name="sleeper")
    lab.reset()
    with pytest.raises(LabError, match="'sleeper' ran in a lab host that has since been reset") as stale:
        server.log()
    one_line(stale.value)


def test_a_trace_cut_off_by_close_says_so():
    lab = Lab(quiet=True)
    with lab.trace("icmp") as trace:
        lab.close()
    with pytest.raises(LabError, match="closed or reset inside the `with lab.trace") as lost:
        trace.table()
    one_line(lost.value)


def test_a_check_with_a_claim_still_works(lab):
    assert lab.check("lo is up", expect.interface("host", "lo", up=True)).passed
