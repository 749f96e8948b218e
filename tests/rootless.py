"""Running things as ordinary users, for the tests that prove labs need no root.

Used by run_all.py (the whole suite again as two users) and by the classroom test
(twenty users at once). Needs root, which creates the users.
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


def ensure_user(name: str, subids: str | None) -> str:
    """Create `name` if needed, with the subordinate id range `subids` ("200000-265535") or
    none; return its home directory."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = [l for l in Path(path).read_text().splitlines() if not l.startswith(f"{name}:")] \
            if Path(path).exists() else []
        if subids:
            start, end = map(int, subids.split("-"))
            lines.append(f"{name}:{start}:{end - start + 1}")
        Path(path).write_text("".join(line + "\n" for line in lines))
    return pwd.getpwnam(name).pw_dir


def readable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", str(path)]).returncode == 0


class Tree:
    """The project as `user` can read it: here, or a world-readable copy of here."""

    def __init__(self, user: str):
        self.copy: Path | None = None
        self.root, self.env = ROOT, {}
        if not (readable_by(user, ROOT / "lablib" / "__init__.py") and readable_by(user, Path(PYTHON))):
            self.copy = Path(tempfile.mkdtemp(prefix="labkit-rootless-"))
            shutil.copytree(ROOT, self.copy, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
            subprocess.run(["chmod", "-R", "a+rX", str(self.copy)], check=True)
            self.root, self.env = self.copy, {"PYTHONPATH": str(self.copy)}
        self.python = str(self.root / Path(PYTHON).relative_to(ROOT)) if Path(PYTHON).is_relative_to(ROOT) else PYTHON

    def argv(self, user: str, *command: str) -> list[str]:
        home = pwd.getpwnam(user).pw_dir
        mark = os.environ.get("LABKIT_TEST_RUN", "")
        return ["runuser", "-u", user, "--", "env", f"HOME={home}", "PYTHONDONTWRITEBYTECODE=1",
                f"LABKIT_TEST_RUN={mark}",
                *[f"{k}={v}" for k, v in self.env.items()], self.python, *command]

    def remove(self) -> None:
        if self.copy:
            shutil.rmtree(self.copy, ignore_errors=True)
