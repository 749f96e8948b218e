"""Exercise results reach the instructor as data: from progress files and from the JSON
output each check leaves in a saved notebook (never from its ✅/❌ text)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
from conftest import ROOT
from nbclient import NotebookClient

from lablib import expect
from lablib.course.progress import MIMETYPE


def test_a_check_records_its_result_beside_the_notebook(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab.check("demo-1 a namespace", expect.namespace_exists("c1"))
    lab.sh("ip netns add c1")
    lab.check("demo-1 a namespace", expect.namespace_exists("c1"))
    entries = [json.loads(line) for line in (tmp_path / ".lablib-progress.jsonl").read_text().splitlines()]
    assert [e["passed"] for e in entries] == [False, True]
    assert {e["exercise"] for e in entries} == {"demo-1 a namespace"}
    assert {e["kind"] for e in entries} == {"check"}


def test_a_check_shows_its_result_as_data_beside_its_text(lab):
    result = lab.check("demo-2 a namespace", expect.namespace_exists("c9"))
    bundle = result._repr_mimebundle_()
    assert bundle["text/plain"].startswith("❌ demo-2")
    assert bundle[MIMETYPE] == {"kind": "check", "exercise": "demo-2 a namespace", "passed": False,
                                "claims": [{"claim": "network namespace c9 exists", "ok": False}]}


def run_progress(path) -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "lablib", "progress", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: line for line in done.stdout.splitlines()[2:] if line.strip()}


def test_progress_reads_the_data_of_executed_notebooks_and_progress_files(tmp_path):
    for learner in ("alice", "bob"):
        (tmp_path / learner).mkdir()
    # alice's notebook, executed for real: one check passes, one fails.
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        "from lablib import Lab, expect\nlab = Lab(quiet=True)",
        "lab.sh('ip netns add c1')\nlab.check('demo-1 a namespace', expect.namespace_exists('c1'))",
        "lab.check('demo-2 another', expect.namespace_exists('c2'))",
        "lab.close()")])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path / "alice")}}).execute()
    nbformat.write(notebook, tmp_path / "alice" / "demo.ipynb")
    (tmp_path / "bob" / ".lablib-progress.jsonl").write_text(
        json.dumps({"user": "bob", "notebook": "demo.ipynb", "exercise": "demo-1 a namespace", "passed": False}) + "\n")
    (tmp_path / "alice" / ".lablib-progress.jsonl").unlink()   # the notebook's own outputs must suffice
    rows = run_progress(tmp_path)
    owner = __import__("pwd").getpwuid(os.getuid()).pw_name   # alice's copy belongs to whoever made it
    assert rows[owner].count("✅") == 1 and rows[owner].count("❌") == 1
    assert "❌" in rows["bob"] and "✅" not in rows["bob"]


def test_progress_does_not_read_the_text_of_an_output(tmp_path):
    cell = nbformat.v4.new_code_cell("print('✅ demo-1 a namespace: all 1 checks pass')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✅ demo-1 a namespace: all 1 checks pass\n")]
    cell.metadata["tags"] = ["check"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "forged.ipynb")
    done = subprocess.run([sys.executable, "-m", "lablib", "progress", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "✅" not in done.stdout
