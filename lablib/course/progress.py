"""Where exercise results go, so an instructor can collect them.

Every check appends one line to `.lablib-progress.jsonl` beside the notebook (the
kernel's working directory), and its ✅/❌ text stays in the saved notebook's outputs.
`python -m lablib progress PATH...` reads either and prints who passed what.
"""
from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

PROGRESS_FILE = ".lablib-progress.jsonl"


def notebook_name() -> str:
    """The notebook this kernel runs, when Jupyter says (JPY_SESSION_NAME), else ''."""
    return Path(os.environ.get("JPY_SESSION_NAME", "")).name


def record(exercise: str, result) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "user": getpass.getuser(),
             "notebook": notebook_name(), "exercise": exercise, "passed": result.passed}
    try:
        with open(PROGRESS_FILE, "a") as f:
            f.write(json.dumps(entry) + "\n")
    except OSError:
        pass   # a read-only folder: the notebook's own outputs still carry the result


def _owner(path: Path) -> str:
    try:
        import pwd
        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (KeyError, OSError):
        return path.parent.name


def from_notebook(path: Path) -> list[dict]:
    """Results of a saved notebook's check cells: their first output line says ✅ or ❌."""
    import nbformat
    notebook = nbformat.read(path, as_version=4)
    results = []
    for cell in notebook.cells:
        if "check" not in cell.metadata.get("tags", []):
            continue
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "") or output.get("text", "")
            first = text.splitlines()[0] if text else ""
            if first[:1] in ("✅", "❌"):
                exercise = first[2:].split(":", 1)[0]
                results.append({"user": _owner(path), "notebook": path.name, "exercise": exercise,
                                "passed": first.startswith("✅")})
    return results


def from_progress_file(path: Path) -> list[dict]:
    results = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        results.append({"user": entry.get("user", _owner(path)), "notebook": entry.get("notebook", ""),
                        "exercise": entry["exercise"], "passed": bool(entry["passed"])})
    return results


def collect(paths: list[str]):
    """Every learner's exercises from notebooks and progress files under `paths`, as a
    table: one row per learner, one column per exercise, ✅ passed / ❌ tried / blank."""
    import pandas as pd
    results = []
    for given in map(Path, paths):
        files = [given] if given.is_file() else sorted(
            [*given.rglob("*.ipynb"), *given.rglob(PROGRESS_FILE)])
        for path in files:
            if ".ipynb_checkpoints" in path.parts:
                continue
            results += from_notebook(path) if path.suffix == ".ipynb" else from_progress_file(path)
    if not results:
        return pd.DataFrame()
    frame = pd.DataFrame(results)
    # An exercise counts as passed if any attempt passed.
    best = frame.groupby(["user", "exercise"])["passed"].max().unstack("exercise")
    return best.apply(lambda column: column.map(lambda v: "" if pd.isna(v) else ("✅" if v else "❌")))
