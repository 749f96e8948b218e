"""Errors a learner can cause, each with a one-line message that says what to do.

In IPython these are shown as a single line, without lablib's internals (see magics.py).
"""
from __future__ import annotations


class LabError(Exception):
    """Something went wrong in a lab; the message says what, and what to do about it."""


class SandboxUnavailable(LabError):
    """This machine cannot create a lab host (user namespaces off, a tool missing, ...)."""


class AgentDied(LabError):
    """The lab host's agent process has gone; nothing more can run in this lab host."""


class NamespaceNotFound(LabError):
    """A command named a network namespace that does not exist in this lab."""


class CommandFailed(LabError):
    """A command run with check=True exited with a non-zero code."""

    def __init__(self, message: str, result) -> None:
        super().__init__(message)
        self.result = result


class CommandTimeout(LabError):
    """A command ran past its timeout and was stopped; `.result` holds what it printed."""

    def __init__(self, message: str, result) -> None:
        super().__init__(message)
        self.result = result


class WaitingForInput(LabError):
    """A command waited for keyboard input, which lab commands never get."""

    def __init__(self, message: str, result) -> None:
        super().__init__(message)
        self.result = result


class ToolMissing(LabError):
    """A command is not installed on this machine."""


class DockerUnavailable(LabError):
    """Docker cannot run in this lab host (its programs missing, dockerd failing); the
    message says why and what to do."""
