"""What running something in a lab host gives back to the notebook."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..machine.tools import command_not_found_hint
from ..model.protocol import CheckProcess, CommandOutput, ProcessStatus, StopProcess

if TYPE_CHECKING:
    from .handle import Lab


def decode(data: bytes) -> tuple[str, bool]:
    """Text of a command's output, and whether it was binary (then not shown)."""
    text = data.decode("utf-8", errors="replace")
    binary = b"\x00" in data or text.count("\ufffd") > max(8, len(text) // 20)
    return ("", True) if binary else (text, False)


@dataclass
class CommandResult:
    """A finished command: what it printed and how it ended."""
    command: str
    ns: str | None
    stdout: str
    stderr: str
    exit_code: int
    duration: float
    notes: list[str] = field(default_factory=list)
    stdout_bytes: bytes = field(default=b"", repr=False)

    @classmethod
    def from_agent(cls, command: str, ns: str | None, output: CommandOutput) -> "CommandResult":
        notes = []
        stdout, stdout_binary = decode(output.stdout)
        stderr, stderr_binary = decode(output.stderr)
        if stdout_binary or stderr_binary:
            size = len(output.stdout) + len(output.stderr)
            notes.append(f"binary output ({size} bytes) not shown; redirect it to a file, or pipe it through xxd")
        if output.dropped:
            notes.append(f"output cut off: {output.dropped} more bytes not kept; "
                         "filter it (| head, | grep) or redirect it to a file")
        hint = command_not_found_hint(stderr or stdout) if output.exit_code == 127 else None
        if _docker_not_started(stderr or stdout, output.exit_code):
            hint = "Docker does not run in this lab host yet: start it with lab.docker()"
        if hint:
            notes.append(hint)
        return cls(command, ns, stdout, stderr, output.exit_code, output.duration, notes, output.stdout)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def where(self) -> str:
        return f" in namespace {self.ns}" if self.ns else ""

    def failure_message(self) -> str:
        """One line: which command failed where, with its last complaint and any hint."""
        complaint = next((line.strip() for line in reversed(self.stderr.splitlines()) if line.strip()), "")
        command = " ".join(self.command.split())
        command = command if len(command) <= 120 else command[:119] + "…"
        text = f"`{command}` exited with code {self.exit_code}{self.where}"
        if complaint:
            text += f": {complaint}"
        return "; ".join([text, *self.notes])

    def __str__(self) -> str:
        return self.stdout

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(self.stdout + self.stderr)
        for note in self.notes:
            printer.text(f"({note})\n")
        if self.exit_code:
            printer.text(f"(exit code {self.exit_code})")


def _docker_not_started(stderr: str, exit_code: int) -> bool:
    return ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock" in stderr
            or (exit_code == 127 and re.search(r"(^|\n)(bash: )?(line \d+: )?docker: command not found", stderr) is not None))


class Log(str):
    """A process's log: a string, shown in a notebook as the text it is (not its repr)."""

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self) if self else "(nothing printed)")


class BackgroundProcess:
    """A server or other long-running process started with lab.spawn()."""

    def __init__(self, lab: Lab, status: ProcessStatus) -> None:
        self._lab = lab
        self._sandbox = lab.sandbox   # the lab host it runs in; a reset makes a new one
        self.pid: int = status.pid
        self.name: str = status.name
        self.command: str = status.command
        self.ns: str | None = status.ns
        self._status = status

    def _same_lab_host(self) -> None:
        from ..model.errors import LabError
        if self._lab.sandbox is not self._sandbox:
            raise LabError(f"'{self.name}' ran in a lab host that has since been reset, and went with it; "
                           "start it again with lab.spawn(...)")

    def _refresh(self) -> ProcessStatus:
        self._same_lab_host()
        self._status = self._lab.sandbox.call(CheckProcess(self.pid))
        return self._status

    def log(self) -> Log:
        """Everything it has printed so far (the newest 256 KiB)."""
        return Log(decode(self._refresh().log)[0])

    @property
    def running(self) -> bool:
        return self._refresh().exit_code is None

    @property
    def exit_code(self) -> int | None:
        return self._refresh().exit_code

    def stop(self) -> Log:
        """Stop it (SIGTERM, then SIGKILL) and return its log."""
        self._same_lab_host()
        self._status = self._lab.sandbox.call(StopProcess(self.pid))
        return Log(decode(self._status.log)[0])

    def __repr__(self) -> str:
        state = "running" if self._status.exit_code is None else f"exited with code {self._status.exit_code}"
        where = f" in {self.ns}" if self.ns else ""
        return f"<{self.command!r}{where}: {state}>"
