"""A classroom on one shared server: twenty learners, each an ordinary user with a lab
host of their own, all at once, all using the same namespace and bridge names. None
sees another's, and the server is unchanged afterwards."""
from __future__ import annotations

import json
import subprocess
import tempfile
import textwrap
from pathlib import Path

import host_state
import pytest
from conftest import is_root
from rootless import Tree, ensure_user

LEARNERS = [f"labkit-student{n:02d}" for n in range(1, 21)]

# Each learner builds the same names, waits until every learner has built theirs,
# then looks for anyone else's.
LEARNER = textwrap.dedent("""
    import json, os, sys, time, getpass
    from pathlib import Path
    from lablib import Lab
    me, room = getpass.getuser(), Path(sys.argv[1])
    with Lab(quiet=True) as lab:
        lab.sh("ip netns add c1 && ip link add br0 type bridge && ip addr add 10.0.0.1/24 dev br0 && ip link set br0 up")
        lab.sh(f"mkdir -p /etc/netns/c1 && echo '# {me}' > /etc/netns/c1/resolv.conf")
        lab.spawn("python3 -m http.server 8080", ready_port=8080)
        (room / me).touch()
        deadline = time.monotonic() + 60
        while len(list(room.iterdir())) < int(sys.argv[2]) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(json.dumps({
            "user": me, "together": len(list(room.iterdir())),
            "netns": lab.sh("ip netns list").stdout.split(),
            "bridges": lab.sh("ip -br link show type bridge | cut -d' ' -f1").stdout.split(),
            "resolv": lab.sh("cat /etc/netns/c1/resolv.conf").stdout.strip(),
            "listeners": lab.sh("ss -Hltn 'sport = :8080' | wc -l").stdout.strip(),
            "processes": len(lab.sh("ps -e -o pid=").stdout.split()),
        }))
""")


@pytest.mark.root_only
def test_twenty_learners_at_once_see_only_their_own_lab(tmp_path):
    if not is_root():
        pytest.skip("creating the learners' accounts needs root")
    for i, user in enumerate(LEARNERS):   # half with a subordinate id range, half without
        ensure_user(user, f"{300000 + 70000 * i}-{300000 + 70000 * i + 65535}" if i % 2 else None)
    tree = Tree(LEARNERS[0])
    room = Path(tempfile.mkdtemp(prefix="labkit-room-"))
    room.chmod(0o1777)
    script = Path(tempfile.mkstemp(prefix="labkit-learner-", suffix=".py")[1])
    script.write_text(LEARNER)
    script.chmod(0o644)
    before = host_state.capture()
    try:
        learners = [subprocess.Popen(tree.argv(user, str(script), str(room), str(len(LEARNERS))),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tree.root)
                    for user in LEARNERS]
        reports = []
        for process in learners:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err[-2000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        tree.remove()
        script.unlink()
    for report in reports:
        assert report["together"] == len(LEARNERS)           # all twenty labs existed at once
        assert report["netns"] == ["c1"]
        assert report["bridges"] == ["br0"]
        assert report["resolv"] == f"# {report['user']}"     # nobody else's file
        assert report["listeners"] == "1"                     # only their own server on 8080
        assert report["processes"] < 15                       # only their own lab's processes
    assert host_state.differences(before, host_state.capture()) == []
