"""lablib: disposable Linux lab hosts for learning how container networks work.

    from lablib import Lab
    lab = Lab()                      # a fresh lab host with a simulated internet
    lab.sh("ip netns add c1")        # real commands, on a real kernel, in a sandbox
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .model.errors import (
    AgentDied,
    CommandFailed,
    CommandTimeout,
    DockerUnavailable,
    LabError,
    LimitReached,
    NamespaceNotFound,
    SandboxUnavailable,
    ToolMissing,
    WaitingForInput,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["Lab", "expect", "measure", "LabError", "LimitReached", "AgentDied", "CommandFailed", "CommandTimeout", "DockerUnavailable", "NamespaceNotFound",
           "SandboxUnavailable", "ToolMissing", "WaitingForInput"]


def __getattr__(name: str) -> object:
    # Imported on first use: the agent and the web server import lablib too, and must start fast.
    if name == "Lab":
        from .notebook.lab import Lab
        return Lab
    if name == "expect":   # the claims a check can make: expect.reaches(...), expect.route(...)
        from .notebook import checks
        return checks
    if name == "measure":  # paths to measure: lab.measure([measure.path(...), ...])
        from .notebook import performance
        return performance
    raise AttributeError(f"module 'lablib' has no attribute {name!r}")


def load_ipython_extension(shell: InteractiveShell) -> None:
    """`%load_ext lablib` registers %%lab before any Lab exists."""
    from .notebook.magics import register
    register(shell)
