"""`python -m lablib shell`: bash in a fresh lab host, for those who prefer a terminal.

The lab host's agent keeps its outside world running; bash joins the sandbox's
namespaces with nsenter (allowed: the sandbox's user namespace is the caller's own),
so it gets the real terminal. When bash exits, the lab host is closed.
"""
from __future__ import annotations

import os
import subprocess
import sys


def run() -> int:
    from ..model.errors import LabError
    from ..notebook.lab import Lab

    try:
        lab = Lab()
    except LabError as error:
        print(error, file=sys.stderr)
        return 1
    env = dict(lab.sandbox.command_environment)
    env.update(TERM=os.environ.get("TERM", "xterm"), PS1=r"root@\h:\w# ")
    print("Type exit (or Ctrl-D) to leave; the lab host and everything in it goes away then.")
    try:
        # The lab's own limits hold for the terminal too (rlimits are per process).
        limits = [f"--nproc={lab.limits.processes}"] + ([] if lab.limits.by_cgroup else [f"--data={lab.limits.memory}"])
        return subprocess.call(["prlimit", *limits, "nsenter", "--target", str(lab.sandbox.init_pid()), "--user",
                                "--net", "--mount", "--uts", "--pid", "--wdns=/root",
                                "bash", "--norc", "--noprofile", "-i"], env=env)
    finally:
        lab.close()
