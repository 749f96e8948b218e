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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ROOTLESS_USERS = {"labkit-subids": True, "labkit-single": False}   # name -> has a subuid range
SUBID_RANGE = "200000-265535"


def run(argv: list[str], **kwargs) -> int:
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, **kwargs).returncode


def pytest(*args: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args]


def ensure_user(name: str, subids: bool) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = [l for l in Path(path).read_text().splitlines() if not l.startswith(f"{name}:")] \
            if Path(path).exists() else []
        if subids:
            start, end = SUBID_RANGE.split("-")
            lines.append(f"{name}:{start}:{int(end) - int(start) + 1}")
        Path(path).write_text("".join(line + "\n" for line in lines))


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


def rootless_tree(user: str) -> tuple[Path, dict[str, str]]:
    """Where `user` can run the tests from: here, or a world-readable copy of here."""
    if readable_by(user, ROOT / "lablib" / "__init__.py") and readable_by(user, Path(PYTHON)):
        return ROOT, {}
    copy = Path(tempfile.mkdtemp(prefix="labkit-rootless-"))
    shutil.copytree(ROOT, copy, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    subprocess.run(["chmod", "-R", "a+rX", str(copy)], check=True)
    return copy, {"PYTHONPATH": str(copy)}


def run_rootless(failures: list[str], extra: list[str]) -> None:
    for user, subids in ROOTLESS_USERS.items():
        ensure_user(user, subids)
        tree, env = rootless_tree(user)
        python = str(tree / Path(PYTHON).relative_to(ROOT)) if Path(PYTHON).is_relative_to(ROOT) else PYTHON
        home = pwd.getpwnam(user).pw_dir
        argv = ["runuser", "-u", user, "--", "env", f"HOME={home}", "PYTHONDONTWRITEBYTECODE=1",
                *[f"{k}={v}" for k, v in env.items()],
                python, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not root_only", "tests", *extra]
        if run(argv, cwd=tree) != 0:
            failures.append(f"tests as {user} ({'subuid range' if subids else 'single-uid map'})")
        if tree != ROOT:
            shutil.rmtree(tree, ignore_errors=True)


def main() -> int:
    extra = sys.argv[1:]
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
