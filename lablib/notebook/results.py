"""What running something in a lab host gives back to the notebook."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..machine.tools import command_not_found_hint


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
    def from_agent(cls, command: str, ns: str | None, raw: dict) -> "CommandResult":
        notes = []
        stdout, stdout_binary = decode(raw["stdout"])
        stderr, stderr_binary = decode(raw["stderr"])
        if stdout_binary or stderr_binary:
            size = len(raw["stdout"]) + len(raw["stderr"])
            notes.append(f"binary output ({size} bytes) not shown; redirect it to a file, or pipe it through xxd")
        if raw["dropped"]:
            notes.append(f"output cut off: {raw['dropped']} more bytes not kept; "
                         "filter it (| head, | grep) or redirect it to a file")
        hint = command_not_found_hint(stderr) if raw["exit_code"] == 127 else None
        if _docker_not_started(stderr, raw["exit_code"]):
            hint = "Docker does not run in this lab host yet: start it with lab.docker()"
        if hint:
            notes.append(hint)
        return cls(command, ns, stdout, stderr, raw["exit_code"], raw["duration"], notes, raw["stdout"])

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def where(self) -> str:
        return f" in namespace {self.ns}" if self.ns else ""

    def failure_message(self) -> str:
        """One line: which command failed where, with its last complaint and any hint."""
        complaint = next((line.strip() for line in reversed(self.stderr.splitlines()) if line.strip()), "")
        text = f"`{self.command.strip()}` exited with code {self.exit_code}{self.where}"
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


class BackgroundProcess:
    """A server or other long-running process started with lab.spawn()."""

    def __init__(self, lab, status: dict):
        self._lab = lab
        self.pid: int = status["pid"]
        self.name: str = status["name"]
        self.command: str = status["command"]
        self.ns: str | None = status["ns"]
        self._status = status

    def _refresh(self, action: str = "status") -> dict:
        self._status = self._lab.sandbox.request("process", action=action, pid=self.pid)
        return self._status

    def log(self) -> str:
        """Everything it has printed so far (the newest 256 KiB)."""
        return decode(self._refresh()["log"])[0]

    @property
    def running(self) -> bool:
        return self._refresh()["exit_code"] is None

    @property
    def exit_code(self) -> int | None:
        return self._refresh()["exit_code"]

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL) and return its log."""
        return decode(self._refresh("stop")["log"])[0]

    def __repr__(self) -> str:
        state = "running" if self._status["exit_code"] is None else f"exited with code {self._status['exit_code']}"
        where = f" in {self.ns}" if self.ns else ""
        return f"<{self.command!r}{where}: {state}>"
