"""Exercise results reach the instructor: from progress files and saved notebooks."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT

from lablib import expect


def test_a_check_records_its_result_beside_the_notebook(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab.check("demo-1 a namespace", expect.namespace_exists("c1"))
    lab.sh("ip netns add c1")
    lab.check("demo-1 a namespace", expect.namespace_exists("c1"))
    entries = [json.loads(line) for line in (tmp_path / ".lablib-progress.jsonl").read_text().splitlines()]
    assert [e["passed"] for e in entries] == [False, True]
    assert {e["exercise"] for e in entries} == {"demo-1 a namespace"}


def test_progress_reads_a_rooms_notebooks_and_files(tmp_path):
    for learner in ("alice", "bob"):
        (tmp_path / learner).mkdir()
    shutil.copy(ROOT / "labs" / "00-welcome.ipynb", tmp_path / "alice")
    (tmp_path / "bob" / ".lablib-progress.jsonl").write_text(
        json.dumps({"user": "bob", "notebook": "00-welcome.ipynb", "exercise": "00-1 a second web server on port 9090",
                    "passed": False}) + "\n")
    done = subprocess.run([sys.executable, "-m", "lablib", "progress", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:]}
    owner = __import__("pwd").getpwuid(os.getuid()).pw_name   # alice's copy belongs to whoever made it
    assert rows[owner].count("✅") == 2
    assert "❌" in rows["bob"] and "✅" not in rows["bob"]
