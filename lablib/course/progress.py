"""Where exercise results go, so an instructor can collect them.

Every check, prediction and fault hunt appends one line to `.lablib-progress.jsonl`
beside the notebook (the kernel's working directory), and shows its result as data
beside its ✅/❌ text: a display output of type MIMETYPE, which the saved notebook keeps.
`python -m lablib progress PATH...` reads either — the data, never the text.
"""
from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

PROGRESS_FILE = ".lablib-progress.jsonl"
MIMETYPE = "application/vnd.lablib.check+json"


def notebook_name() -> str:
    """The notebook this kernel runs, when Jupyter says (JPY_SESSION_NAME), else ''."""
    return Path(os.environ.get("JPY_SESSION_NAME", "")).name


def record(exercise: str, result, **extra) -> None:
    """Append one result: a CheckResult, or anything with `passed` and `data()`."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "user": getpass.getuser(),
             "notebook": notebook_name(), "exercise": exercise, "passed": bool(result.passed)}
    data = result.data() if hasattr(result, "data") else {}
    entry["kind"] = data.get("kind", "check")
    entry.update({k: v for k, v in data.items() if k not in entry and k != "claims"})
    entry.update(extra)
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
    """Results saved in a notebook: every output carrying MIMETYPE data, in any cell."""
    import nbformat
    notebook = nbformat.read(path, as_version=4)
    results = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MIMETYPE)
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except ValueError:
                    continue
            if isinstance(data, dict) and "exercise" in data:
                results.append({"user": _owner(path), "notebook": path.name, "exercise": data["exercise"],
                                "kind": data.get("kind", "check"), "passed": bool(data.get("passed"))})
    return results


def from_progress_file(path: Path) -> list[dict]:
    results = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        results.append({"user": entry.get("user", _owner(path)), "notebook": entry.get("notebook", ""),
                        "exercise": entry["exercise"], "kind": entry.get("kind", "check"),
                        "passed": bool(entry["passed"])})
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


def fault_hunts(paths: list[str]):
    """Every learner's fault hunts from their progress files: one row per learner and hunt,
    with the fault's kind, the hints they asked for, and whether they solved it."""
    import pandas as pd
    hunts: dict[tuple[str, str], dict] = {}
    for given in map(Path, paths):
        files = [given] if given.is_file() else sorted(given.rglob(PROGRESS_FILE))
        for path in files:
            if path.suffix == ".ipynb":
                continue
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if "fault" not in entry:      # a check of a fault hunt carries the fault's kind
                    continue
                user = entry.get("user") or _owner(path)
                row = hunts.setdefault((user, entry["exercise"]), {"user": user, "exercise": entry["exercise"],
                                                                   "fault": "", "hints": 0, "solved": "❌"})
                row["fault"] = entry.get("fault", row["fault"])
                row["hints"] = max(row["hints"], int(entry.get("hints", 0) or 0))
                if entry.get("kind") not in ("fault-planted", "fault-hint") and entry.get("passed"):
                    row["solved"] = "✅"
    return pd.DataFrame(sorted(hunts.values(), key=lambda r: (r["user"], r["exercise"])),
                        columns=["user", "exercise", "fault", "hints", "solved"])


class ShownResult:
    """How a check's, a prediction's or a fault hunt's result shows in a notebook: its
    ✅/❌ text, and beside it the same result as data (MIMETYPE) for the instructor.
    Subclasses give `text()` and `data()`."""

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/plain": self.text(), MIMETYPE: self.data()}

    def __repr__(self) -> str:
        return self.text()
