"""The course as a learner sees it: JupyterLab in headless Chromium, notebooks run with
Run All, then the page itself is read — what nbval, comparing outputs, cannot see.

Screenshots of every notebook land in test-artifacts/screenshots/ for a reviewer.
"""
from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

pytestmark = [pytest.mark.notebooks, pytest.mark.browser]

if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
    pytest.fail("the browser tests need Debian's chromium and chromium-driver: ./labkit test installs them "
                "(lablib/machine/test-packages.txt)", pytrace=False)

from browser import SCREENSHOTS, JupyterLab, Notebook, chromium, copy_labs  # noqa: E402

from lablib.course.editions import write_student_editions  # noqa: E402

PANEL = "lab host topology"
WIDGET_AS_TEXT = re.compile(r"\b(HTML|Sidecar|Output|VBox|HBox)\(\w+=|HTML\(value=")

# Every output of every cell, as the page shows it.
CELLS_JS = """
return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')].map(cell => ({
  code: cell.classList.contains('jp-CodeCell'),
  source: [...cell.querySelectorAll('.jp-InputArea .cm-line')].map(l => l.textContent).join('\\n'),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
      mime: o.getAttribute('data-mime-type'), text: o.textContent})),
}));"""

# Each drawing in the notebook's outputs and in the docked panel, and the room it has.
DRAWINGS_JS = """
const found = [];
const room = el => el.closest('.jp-OutputArea-output, .widget-html-content, .jp-LinkedOutputView, .lm-Widget');
for (const img of document.querySelectorAll('.jp-OutputArea-output img, .jp-OutputArea-output svg')) {
  if (img.tagName.toLowerCase() === 'svg' && img.parentElement.closest('svg')) continue;
  const where = img.closest('.jp-NotebookPanel') ? 'notebook' : 'panel';
  const box = room(img);
  found.push({where, tag: img.tagName.toLowerCase(),
              svg: img.tagName.toLowerCase() === 'svg' || (img.getAttribute('src') || '').startsWith('data:image/svg+xml'),
              width: img.getBoundingClientRect().width, room: box.clientWidth,
              scrolls: box.scrollWidth > box.clientWidth + 1,
              text: img.tagName.toLowerCase() === 'svg' ? img.textContent.replace(/\\s+/g, ' ') : ''});
}
return found;"""


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyterlab")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)   # this run's screenshots only
    root = copy_labs(home / "labs")
    write_student_editions(ROOT / "labs", root / "student")   # where ./labkit lab --student puts them
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    server = JupyterLab(root, home)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def driver():
    browser = chromium()
    yield browser
    browser.quit()


def shut_down_kernels(server: JupyterLab) -> None:
    api = f"{server.base}/api/kernels"
    for kernel in json.load(urllib.request.urlopen(f"{api}?token={server.token}")):
        request = urllib.request.Request(f"{api}/{kernel['id']}?token={server.token}", method="DELETE")
        urllib.request.urlopen(request)


def widgets_shown_as_text(cells) -> list[str]:
    return [output["text"][:80] for cell in cells for output in cell["outputs"]
            if WIDGET_AS_TEXT.search(output["text"])]


def assert_opens_without_a_panel(notebook: Notebook) -> None:
    assert PANEL not in notebook.panels(), "a live panel opened before lab.live() ran"
    assert widgets_shown_as_text(notebook.js(CELLS_JS)) == []


def assert_learner_sees_a_clean_run(notebook: Notebook, saved: Path, *, drawings: int, verdict: str) -> None:
    cells = notebook.js(CELLS_JS)
    assert notebook.panels().count(PANEL) == 1, notebook.panels()
    assert widgets_shown_as_text(cells) == []
    # Checks answer with a verdict the learner can read.
    checks = [cell for cell in cells if cell["code"] and "lab.check(" in cell["source"]]
    assert checks, "no check cells found"
    for cell in checks:
        assert cell["outputs"] and cell["outputs"][-1]["text"].startswith(verdict), cell
    # Drawings are SVG and fit the room they are shown in (the column, or the docked panel).
    found = notebook.js(DRAWINGS_JS)
    in_notebook = [d for d in found if d["where"] == "notebook"]
    assert len(in_notebook) >= drawings and [d for d in found if d["where"] == "panel"], found
    for drawing in found:
        assert drawing["svg"], drawing
        assert drawing["width"] <= drawing["room"] + 1 and not drawing["scrolls"], drawing
    # No error outputs: read what JupyterLab saved, and the page.
    notebook.save()
    errors = [cell.source[:80] for cell in nbformat.read(saved, as_version=4).cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert errors == [], errors
    assert not [o for c in cells for o in c["outputs"] if "Traceback" in o["text"]]
    assert "widgets" not in nbformat.read(saved, as_version=4).metadata


def screenshots(notebook: Notebook, name: str) -> None:
    """At a laptop's size: one on the first drawing, then the whole notebook page by page
    (NAME-page-01.png, ...), as a learner scrolling through it sees it."""
    for _ in range(3):   # cells out of view have no size yet: scroll again once they have
        notebook.js("""const d = document.querySelector('.jp-NotebookPanel .jp-OutputArea-output img');
                       if (d) d.scrollIntoView({block: 'center'});""")
        time.sleep(0.5)
    notebook.screenshot(f"{name}-drawing")
    scroller = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
    notebook.js(f"{scroller}.scrollTop = 0")
    for page in range(1, 41):
        time.sleep(0.3)
        notebook.screenshot(f"{name}-page-{page:02d}")
        before = notebook.js(f"return {scroller}.scrollTop")
        notebook.js(f"{scroller}.scrollTop += {scroller}.clientHeight * 0.9")
        if notebook.js(f"return {scroller}.scrollTop") == before:
            break


@pytest.mark.parametrize("name,drawings", [("00-welcome", 2), ("03-bridge", 5), ("07-port-publishing", 3)])
def test_a_notebook_run_in_jupyterlab_shows_what_a_learner_expects(jupyterlab, driver, name, drawings):
    notebook = Notebook(driver, jupyterlab, f"{name}.ipynb")
    assert_opens_without_a_panel(notebook)
    notebook.run_all()
    screenshots(notebook, name)
    assert_learner_sees_a_clean_run(notebook, jupyterlab.root / f"{name}.ipynb", drawings=drawings, verdict="✅")
    # Reopened (its kernel gone, as the next day): no panel until lab.live() runs again.
    shut_down_kernels(jupyterlab)
    assert_opens_without_a_panel(Notebook(driver, jupyterlab, f"{name}.ipynb"))
    shut_down_kernels(jupyterlab)


def test_the_student_edition_is_served_with_answer_cells_and_runs_clean(jupyterlab, driver):
    from lablib.course.editions import ANSWER, STUDENT_POINTER
    name = "01-namespaces"
    served = jupyterlab.root / "student" / f"{name}.ipynb"
    answers = [cell for cell in nbformat.read(served, as_version=4).cells if ANSWER in cell.source]
    assert len(answers) >= 2
    notebook = Notebook(driver, jupyterlab, f"student/{name}.ipynb")
    assert_opens_without_a_panel(notebook)
    notebook.run_all()   # every cell has been shown once: the page holds all of them
    screenshots(notebook, f"student-{name}")
    cells = notebook.js(CELLS_JS)
    assert len([cell for cell in cells if ANSWER in cell["source"]]) == len(answers)
    text = notebook.js("return document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)').textContent")
    assert "hidden cell" not in text and STUDENT_POINTER.split(",")[0].strip("(") in text
    assert_learner_sees_a_clean_run(notebook, jupyterlab.root / "student" / f"{name}.ipynb", drawings=4,
                                    verdict="❌")
    shut_down_kernels(jupyterlab)


SCRATCH = [
    "from lablib import Lab\nlab = Lab()\nlab.live()",
    "%%lab\nip link add br9 type bridge",
    "%%lab\nping 198.51.100.10",
    "%%lab\nip -br link show br9\necho next cell works",
    "lab.live()",
]


def test_interrupt_stops_a_command_and_keeps_the_lab_host_and_the_panel_redraws(jupyterlab, driver):
    path = jupyterlab.root / "scratch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in SCRATCH],
                                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}), path)
    notebook = Notebook(driver, jupyterlab, "scratch.ipynb")
    assert PANEL not in notebook.panels()

    def run_cell(index: int, wait: bool = True) -> None:
        cell = notebook.driver.find_elements("css selector", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")[index]
        cell.find_element("css selector", ".jp-InputPrompt").click()   # selects it, as a learner's click
        notebook.wait(lambda: "jp-mod-selected" in cell.get_attribute("class")
                      or "jp-mod-active" in cell.get_attribute("class"), 10, f"cell {index} to be selected")
        notebook.command("Run", r"Run Selected Cells? and Do not Advance")
        if wait:
            notebook.wait(lambda: notebook.busy_cells() == 0 and notebook.kernel_idle(), 120, f"cell {index}")

    def panel_text() -> str:
        return " ".join(d["text"] for d in notebook.js(DRAWINGS_JS) if d["where"] == "panel")

    def outputs(index: int) -> str:
        return "\n".join(o["text"] for o in notebook.js(CELLS_JS)[index]["outputs"])

    run_cell(0)
    assert notebook.panels().count(PANEL) == 1 and "br9" not in panel_text()
    run_cell(1)
    notebook.wait(lambda: "br9" in panel_text(), 30, "the live panel to redraw")
    run_cell(2, wait=False)
    notebook.wait(lambda: "64 bytes from 198.51.100.10" in outputs(2), 60, "ping to answer")
    notebook.driver.find_element("css selector", "[data-command='notebook:interrupt-kernel']").click()
    notebook.wait(lambda: notebook.busy_cells() == 0 and notebook.kernel_idle(), 60, "the interrupt")
    notebook.screenshot("interrupt")
    assert "AgentDied" not in outputs(2) and "stopped unexpectedly" not in outputs(2), outputs(2)
    assert "Interrupted: ⏹ the command was stopped" in outputs(2) and "Traceback" not in outputs(2)
    run_cell(3)
    assert "br9" in outputs(3) and "next cell works" in outputs(3), outputs(3)
    run_cell(4)   # lab.live() again: the same one panel
    assert notebook.panels().count(PANEL) == 1, notebook.panels()
    shut_down_kernels(jupyterlab)
    path.unlink()
    shutil.rmtree(jupyterlab.root / ".ipynb_checkpoints", ignore_errors=True)
