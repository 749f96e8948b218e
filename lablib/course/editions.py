"""Student editions: the notebooks with an empty answer cell where each solution was.

Each run of cells tagged `solution` becomes one empty `answer` cell (a `%%lab` cell when
the solution was one), every output is cleared (nbconvert's ClearOutputPreprocessor),
saved widget state is dropped, and the sentence that points at the hidden solution
points at the answer cell instead. `check` cells stay, and work as before.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor

ANSWER = "# your answer here"
# The full edition says where its hidden solution is; the student edition has none.
POINTER = re.compile(r"\(Stuck\? The hidden cell [^)]*holds a solution[^)]*\)")
STUDENT_POINTER = "(Write your answer in the empty cell just above the check, run it, then run the check.)"


def answer_cell(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An empty cell to answer in, of the same kind as the solution it stands for."""
    first = solution.source.lstrip().split("\n", 1)[0]
    source = ANSWER if not first.startswith("%%lab") else f"{first}\n{ANSWER}: commands, as in a terminal"
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["answer"]})


def student_edition(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells, previous_was_solution = [], False
    for cell in notebook.cells:
        is_solution = "solution" in cell.metadata.get("tags", [])
        if is_solution and not previous_was_solution:
            cells.append(answer_cell(cell))
        elif not is_solution:
            if cell.cell_type == "markdown":
                cell.source = POINTER.sub(STUDENT_POINTER, cell.source)
            cells.append(cell)
        previous_was_solution = is_solution
    notebook.cells = cells
    notebook.metadata.pop("widgets", None)
    notebook, _ = ClearOutputPreprocessor().preprocess(notebook, {})
    return notebook


def write_student_editions(source: Path, target: Path, *, keep_existing: bool = False) -> list[Path]:
    """Write a student edition of every notebook in `source` into `target`; return them.

    With `keep_existing`, a notebook already in `target` is left alone: it may hold a
    learner's answers.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.ipynb")):
        out = target / path.name
        if keep_existing and out.exists():
            continue
        nbformat.write(student_edition(nbformat.read(path, as_version=4)), out)
        written.append(out)
    return written
