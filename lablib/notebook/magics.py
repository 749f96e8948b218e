"""Notebook integration: the %%lab / %lab magics and one-line errors.

`%%lab` runs the cell as bash in the newest Lab's host; `%%lab c1` runs it inside
namespace c1 (as `ip netns exec c1 bash` would). Output appears as it comes, stdout and
stderr together in the order written, as a terminal shows them: a program's stderr
is not an error in itself (`conntrack -F` reports success there). What went wrong is
said after it, in Jupyter's error colour: a failing exit code, a command stopped.
`%lab CMD` does the same for one line.
"""
from __future__ import annotations

import codecs
import shlex
import sys
import weakref
from typing import TYPE_CHECKING

from ..model.errors import CommandTimeout, LabError, LimitReached, WaitingForInput

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .handle import Lab


class Interrupted(LabError):
    """Jupyter's stop button (■) stopped a %%lab command."""


_current: weakref.ref | None = None
_registered = False


def adopt(lab: Lab) -> None:
    """Make `lab` the one the magics talk to, and register them once in IPython."""
    global _current, _registered
    _current = weakref.ref(lab)
    if _registered:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        register(shell)


def register(shell: InteractiveShell) -> None:
    global _registered
    from IPython.core.magic import Magics, line_cell_magic, magics_class

    @magics_class
    class LabMagics(Magics):
        @line_cell_magic
        def lab(self, line: str, cell: str | None = None) -> None:
            """%%lab [NS] [--timeout SECONDS]: run the cell as bash in the lab host or namespace NS.
            %lab [-n NS] COMMAND: run one command."""
            run_magic(line, cell)

    shell.register_magics(LabMagics)
    shell.set_custom_exc((LabError,), _show_lab_error)
    _registered = True


def _show_lab_error(shell, etype, value, tb, tb_offset=None):
    # A learner's mistake deserves one line that says what to do, not lablib's internals.
    print(f"{etype.__name__}: {value}", file=sys.stderr)
    return [f"{etype.__name__}: {value}"]


def _parse(line: str, cell: str | None) -> tuple[str, str | None, float | None]:
    """`%%lab [NS] [-t SECONDS]` over a cell, or `%lab [-n NS] [-t SECONDS] COMMAND`.

    Options are read only before the command starts: `%lab iptables -t nat -S` is a command.
    """
    words = shlex.split(line)
    ns, timeout, used = None, None, 0
    while used < len(words):
        word = words[used]
        if word in ("-t", "--timeout") and used + 1 < len(words):
            try:
                timeout = float(words[used + 1])
            except ValueError:
                raise LabError(f"{'%%lab' if cell is not None else '%lab'}: {word} takes seconds, "
                               f"not {words[used + 1]!r}") from None
            used += 2
        elif word in ("-n", "--ns") and cell is None and used + 1 < len(words):
            ns, used = words[used + 1], used + 2
        elif cell is not None and ns is None and not word.startswith("-"):
            ns, used = word, used + 1
        else:
            break
    if cell is not None:
        if used < len(words):
            raise LabError(f"%%lab takes a namespace and -t SECONDS, not {' '.join(words[used:])!r}")
        return cell, ns, timeout
    # The command exactly as typed, after the options consumed above.
    rest = line.lstrip()
    for word in words[:used]:
        rest = rest[rest.index(word) + len(word):].lstrip()
    return rest, ns, timeout


def current_lab() -> Lab:
    lab = _current() if _current else None
    if lab is None:
        raise LabError("no lab host yet: run `lab = Lab()` first")
    return lab


def run_magic(line: str, cell: str | None) -> None:
    command, ns, timeout = _parse(line, cell)
    if not command.strip():
        return
    lab = current_lab()
    decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
    streams = {"stdout": sys.stdout, "stderr": sys.stdout}   # one stream, as in a terminal (together=True)
    binary, last = False, None

    def show(stream: str, data: bytes) -> None:
        nonlocal binary, last
        if binary or b"\x00" in data:
            binary = True
            return
        # No flush per chunk: the kernel sends what arrived every ~0.2 s, as one output.
        # But when the command switches from stdout to stderr (or back), flush what came
        # before, so that an error shows after the output printed before it and not ahead.
        if last is not None and last != stream:
            streams[last].flush()
        last = stream
        streams[stream].write(decoders[stream].decode(data))

    try:
        result = lab.sh(command, ns=ns, check=False, timeout=timeout, on_output=show, together=True)
    except (CommandTimeout, WaitingForInput, LimitReached) as stopped:
        print(f"\n⏹ {stopped}", file=sys.stderr)
        return
    except KeyboardInterrupt:
        for name, stream in streams.items():
            stream.write(decoders[name].decode(b"", final=True))
        # Still an error, so that Jupyter stops the cells queued after this one.
        raise Interrupted("⏹ the command was stopped, as Ctrl-C would; the lab host and everything "
                          "in it are still there") from None
    for name, stream in streams.items():
        stream.write(decoders[name].decode(b"", final=True))
        stream.flush()
    for note in result.notes:
        print(f"({note})", file=sys.stderr)
    if result.exit_code:
        print(f"(exit code {result.exit_code})", file=sys.stderr)
