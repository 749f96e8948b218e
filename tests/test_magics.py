"""%%lab in IPython: output as it comes, failures shown plainly, errors in one line."""
from __future__ import annotations

import pytest


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython
    return get_ipython()


def run_cell(shell, capsys, cell: str) -> tuple[str, str]:
    shell.run_cell(cell)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_cell_magic_runs_bash_in_the_host_and_shows_a_failing_exit_code(shell, capsys):
    shell.run_cell("from lablib import Lab\nlab = Lab(quiet=True)")
    try:
        out, err = run_cell(shell, capsys, "%%lab\nhostname\ncurl -sS 127.0.0.1:9")
        assert out == "lab-host\n"
        assert "Couldn't connect to server" in err and "(exit code 7)" in err
    finally:
        shell.run_cell("lab.close()")


def test_cell_magic_with_a_namespace_runs_inside_it(shell, capsys):
    shell.run_cell("from lablib import Lab\nlab = Lab(quiet=True)")
    try:
        shell.run_cell("%lab ip netns add c1")
        out, err = run_cell(shell, capsys, "%%lab c1\nip -o link | wc -l")
        assert out == "1\n" and err == ""
        out, _ = run_cell(shell, capsys, "%lab -n c1 ip -br link")
        assert out.startswith("lo ")
    finally:
        shell.run_cell("lab.close()")


def test_cell_magic_reports_a_timeout_and_a_typo_in_one_line(shell, capsys):
    shell.run_cell("from lablib import Lab\nlab = Lab(quiet=True)")
    try:
        out, err = run_cell(shell, capsys, "%%lab --timeout 1\nping 203.0.113.1")
        assert "64 bytes from 203.0.113.1" in out and "still running after 1 s" in err
        out, err = run_cell(shell, capsys, "%%lab nope\ntrue")
        assert "NamespaceNotFound: namespace 'nope' does not exist" in err
        assert "Traceback" not in out + err
    finally:
        shell.run_cell("lab.close()")


def test_output_streams_before_the_command_ends(lab):
    arrivals = []
    import time
    started = time.monotonic()
    lab.sh("echo first; sleep 1; echo second", on_output=lambda stream, data: arrivals.append((time.monotonic() - started, data)))
    assert arrivals[0][1] == b"first\n" and arrivals[-1][1] == b"second\n"
    assert arrivals[0][0] < arrivals[-1][0] - 0.5   # the first line came a second before the last


def test_a_cells_outputs_keep_the_order_the_command_printed_them_in():
    """An error printed before some output shows before it, so a cell's last line of output
    belongs to the command that printed it (curl's error, then ping's lines)."""
    import nbformat
    from nbclient import NotebookClient
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from lablib import Lab\nlab = Lab(quiet=True)"),
        nbformat.v4.new_code_cell("%%lab\ncurl -sS 127.0.0.1:9\necho printed after curl failed\nexit 3"),
        nbformat.v4.new_code_cell("lab.close()")])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    outputs = [(o["name"], o["text"]) for o in notebook.cells[1].outputs]
    text = "".join(t for _name, t in outputs)
    assert text.index("Couldn't connect") < text.index("printed after curl failed") < text.index("(exit code 3)")
    assert outputs[0][0] == "stderr" and "Couldn't connect" in outputs[0][1]
