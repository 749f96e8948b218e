"""Student editions: the notebooks without their solution cells and without outputs.

Cells tagged `solution` are removed (nbconvert's TagRemovePreprocessor), every output
is cleared (ClearOutputPreprocessor); `check` cells stay, and work as before.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor
from traitlets.config import Config


def student_edition(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"solution"}
    config.TagRemovePreprocessor.enabled = True
    notebook, _ = TagRemovePreprocessor(config=config).preprocess(notebook, {})
    notebook, _ = ClearOutputPreprocessor().preprocess(notebook, {})
    return notebook


def write_student_editions(source: Path, target: Path) -> list[Path]:
    """Write a student edition of every notebook in `source` into `target`; return them."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.ipynb")):
        notebook = student_edition(nbformat.read(path, as_version=4))
        out = target / path.name
        nbformat.write(notebook, out)
        written.append(out)
    return written
