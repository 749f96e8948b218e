"""Run every test, the way `./labkit test` and CI do.

1. pytest on tests/ as the calling user;
2. when that user is root: the same tests again as two ordinary users — one with a
   subordinate uid range (full id map) and one without (single-uid map and shims) —
   since labs must work rootless;
3. nbval on every notebook in labs/;
4. when root: the machine's network, firewall, resolv.conf and process list are
   compared before and after all of it. Any difference fails the run.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

from rootless import PYTHON, ROOT, Tree, ensure_user

ROOTLESS_USERS = {"labkit-subids": "200000-265535", "labkit-single": None}   # name -> subuid range


def run(argv: list[str], **kwargs) -> int:
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, **kwargs).returncode


def pytest(*args: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args]


def run_rootless(failures: list[str], extra: list[str]) -> None:
    for user, subids in ROOTLESS_USERS.items():
        ensure_user(user, subids)
        tree = Tree(user)
        argv = tree.argv(user, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not root_only and not notebooks", "tests", *extra)
        if run(argv, cwd=tree.root) != 0:
            failures.append(f"tests as {user} ({'subuid range' if subids else 'single-uid map'})")
        tree.remove()


def main() -> int:
    extra = sys.argv[1:]
    # Every lab this run starts inherits the mark; the residue check looks for exactly those.
    os.environ["LABKIT_TEST_RUN"] = f"run-{os.getpid()}"
    # The committed notebooks were run with this seed, so each fault hunt plants the
    # fault their outputs show, whoever runs the tests (a learner's seed is their name).
    os.environ.setdefault("LABLIB_FAULT_SEED", "course-tests")
    root = os.geteuid() == 0
    failures: list[str] = []
    before = Path(tempfile.mkstemp(prefix="labkit-host-before-")[1])
    if root:
        run([PYTHON, str(ROOT / "tests" / "host_state.py"), "save", str(before)])
    if run(pytest("tests", *extra), cwd=ROOT) != 0:
        failures.append(f"tests as {'root' if root else pwd.getpwuid(os.getuid()).pw_name}")
    if root:
        run_rootless(failures, extra)
    notebooks = sorted((ROOT / "labs").glob("*.ipynb"))
    if notebooks:
        if run(pytest("--nbval", "--nbval-current-env", "--nbval-cell-timeout", "120",
                      "--nbval-sanitize-with", "tests/sanitize.cfg", "labs", *extra), cwd=ROOT) != 0:
            failures.append("notebooks (nbval)")
    if root and run([PYTHON, str(ROOT / "tests" / "host_state.py"), "compare", str(before)]) != 0:
        failures.append("the machine was left changed")
    before.unlink(missing_ok=True)
    print("\nall tests passed" if not failures else "\nFAILED: " + "; ".join(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
