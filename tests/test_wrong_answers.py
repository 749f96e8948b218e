"""Plausible wrong answers get ❌, with a hint that names the mistake.

tests/wrong_answers/NN-topic.yaml lists, for each exercise of labs/NN-topic.ipynb, the
cells a learner might type instead of the solution, and text the check's output must
then contain. Each notebook is executed once, top to bottom, in one kernel (nbclient);
at each exercise every mistake is run instead of the solution, then the real check cell,
then the mistake's `undo` (or, without one, the notebook is re-run up to the exercise in
a fresh kernel); then the solution and the check, which must pass again.

    04-1:
      - name: negated out-interface
        instead: |
          %%lab
          sudo iptables -A FORWARD -i bridge_home ! -o eth0 -j ACCEPT
        hint: "opposite of -o eth0"
        undo: sudo iptables -D FORWARD -i bridge_home ! -o eth0 -j ACCEPT   # optional, bash

`hint` may be a list (every item must appear). A mistake marked `xfail: why` is one the
notebook's check cannot catch yet: it is run and reported, but does not fail the test.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack

import nbformat
import pytest
import yaml
from conftest import ROOT
from nbclient import NotebookClient

from lablib.course.progress import MIMETYPE

LABS = ROOT / "labs"
CORPUS = ROOT / "tests" / "wrong_answers"
MINIMUM = 3
EXERCISE_ID = re.compile(r"""lab\.check\(\s*["'](\S+)""")
# A prediction or a fault hunt is named where it is made; its check cell only observes.
SETUP_ID = re.compile(r"""(?:lab|hunts)\.(predict|plant_fault|next)\(\s*["']([^\s"']+)""")


def corpus() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) or {} for path in sorted(CORPUS.glob("*.yaml"))}


def exercises(notebook) -> dict[str, dict]:
    """Each exercise's cells: {"04-1": {"solution": [indexes], "check": index}}; a
    prediction's also "prediction": the cell that makes it (re-run after each mistake, so
    the next one is a fresh prediction)."""
    found, pending, setup = {}, [], None
    for index, cell in enumerate(notebook.cells):
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            pending.append(index)
        elif "check" in tags:
            match = EXERCISE_ID.search(cell.source)
            if match:
                found[match.group(1)] = {"solution": pending, "check": index}
            elif setup is not None:
                found[setup[1]] = {"solution": pending, "check": index}
                if setup[0] == "predict":
                    found[setup[1]]["prediction"] = setup[2]
            pending, setup = [], None
        elif cell.cell_type == "code" and (made := SETUP_ID.search(cell.source)):
            setup = (made.group(1), made.group(2), index)
    return found


def output_text(cell) -> tuple[str, list[dict]]:
    parts, data = [], []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/plain"))
        if output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
        if MIMETYPE in output.get("data", {}):
            value = output["data"][MIMETYPE]
            data.append(json.loads(value) if isinstance(value, str) else value)
    return "\n".join(parts), data


class Kernel:
    """One kernel running a notebook's cells (and cells of our own) in order."""

    def __init__(self, notebook):
        self.notebook = notebook
        self.stack = ExitStack()
        self.client = NotebookClient(nbformat.v4.new_notebook(metadata=notebook.metadata), timeout=180,
                                     kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(LABS)}})
        self.stack.enter_context(self.client.setup_kernel())

    def run(self, source: str):
        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        return cell

    def run_cells(self, start: int, stop: int) -> None:
        for cell in self.notebook.cells[start:stop]:
            if cell.cell_type == "code":
                self.run(cell.source)

    def close(self) -> None:
        self.stack.close()


def judge_mistake(kernel: Kernel, notebook, where: dict, mistake: dict) -> str | None:
    """Run the mistake and the check; None if the check said ❌ with the hint, else why not."""
    typed = kernel.run(mistake["instead"])
    typed_text, _ = output_text(typed)
    check = kernel.run(notebook.cells[where["check"]].source)
    text, data = output_text(check)
    hints = mistake["hint"] if isinstance(mistake["hint"], list) else [mistake["hint"]]
    if "Traceback" in text or "Error:" in text.split("\n", 1)[0]:
        return f"the check failed to run:\n{text}"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not first.startswith("❌"):
        return f"the check passed:\n{text}\n(the mistake printed: {typed_text[-400:]})"
    missing = [hint for hint in hints if hint not in text]
    if missing:
        return f"❌, but without the hint {missing}:\n{text}"
    if not data or data[-1].get("passed") is not False:
        return f"❌ in text, but its data output says {data}"
    return None


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", sorted(corpus()), ids=str)
def test_every_wrong_answer_gets_no_with_its_hint(stem: str):
    path = LABS / f"{stem}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    wanted = corpus()[stem]
    cells = exercises(notebook)
    failures, judged, report = [], 0, []
    kernel = Kernel(notebook)
    position = 0
    try:
        for exercise, where in sorted(cells.items(), key=lambda item: item[1]["check"]):
            first = where["solution"][0] if where["solution"] else where["check"]
            kernel.run_cells(position, first)
            position = first
            for mistake in wanted.get(exercise, []):
                why = judge_mistake(kernel, notebook, where, mistake)
                judged += 1
                if why and not mistake.get("xfail"):
                    failures.append(f"{exercise} / {mistake['name']}: {why}")
                report.append((exercise, mistake["name"], "xfail" if mistake.get("xfail") and why
                               else ("❌ as it should" if not why else "FAILED")))
                if "prediction" in where:   # a prediction, once observed, is spent: make it again
                    kernel.run(notebook.cells[where["prediction"]].source)
                elif mistake.get("undo"):
                    kernel.run(f"lab.sh({mistake['undo']!r}, check=False)")
                else:   # no undo: the state before the exercise, from scratch
                    kernel.close()
                    kernel = Kernel(notebook)
                    kernel.run_cells(0, first)
            kernel.run_cells(first, where["check"])
            check = kernel.run(notebook.cells[where["check"]].source)
            text, _ = output_text(check)
            if not text.strip().startswith("✅"):
                failures.append(f"{exercise}: after the mistakes (and their undo), the solution fails:\n{text}")
            position = where["check"] + 1
    finally:
        kernel.close()
    for exercise, name, outcome in report:
        print(f"{stem} {exercise}: {name}: {outcome}")
    assert judged, f"{stem}: no mistakes were run"
    assert not failures, "\n\n".join(failures)


def test_the_corpus_has_three_mistakes_for_every_exercise():
    missing = []
    known = corpus()
    for path in sorted(p for p in LABS.glob("[0-9][0-9]-*.ipynb") if not p.name.startswith("00-")):
        for exercise in exercises(nbformat.read(path, as_version=4)):
            listed = [m for m in known.get(path.stem, {}).get(exercise, []) if not m.get("xfail")]
            if len(listed) < MINIMUM:
                missing.append(f"{path.stem} {exercise}: {len(listed)}")
    assert not missing, f"exercises with fewer than {MINIMUM} wrong answers: {missing}"


def test_the_issues_three_examples_are_in_the_corpus():
    known = corpus()
    typed = {exercise: " ".join(m["instead"] for m in mistakes)
             for data in known.values() for exercise, mistakes in data.items()}
    assert "! -o eth0" in typed["04-1"]
    assert "/etc/hosts" in typed["06-1"]
    assert "iptables -A FORWARD -j ACCEPT" in typed["07-1"]


def test_each_mistake_is_typed_and_names_its_hint():
    for stem, data in corpus().items():
        for exercise, mistakes in data.items():
            for mistake in mistakes:
                assert {"name", "instead", "hint"} <= set(mistake), f"{stem} {exercise}: {mistake}"
                assert mistake["instead"].strip() and mistake["hint"], f"{stem} {exercise}: {mistake['name']}"


def summary() -> dict[str, dict[str, int]]:
    """Per notebook, per exercise, how many wrong answers are listed (for reports)."""
    return {stem: {exercise: len(mistakes) for exercise, mistakes in data.items()}
            for stem, data in corpus().items()}


if __name__ == "__main__":
    for stem, counts in summary().items():
        print(stem, counts)
