"""lablib: disposable Linux lab hosts for learning how container networks work.

    from lablib import Lab
    lab = Lab()                      # a fresh lab host with a simulated internet
    lab.sh("ip netns add c1")        # real commands, on a real kernel, in a sandbox
"""
from .model.errors import (
    AgentDied,
    CommandFailed,
    CommandTimeout,
    LabError,
    NamespaceNotFound,
    SandboxUnavailable,
    ToolMissing,
    WaitingForInput,
)

__all__ = ["Lab", "expect", "measure", "LabError", "AgentDied", "CommandFailed", "CommandTimeout", "NamespaceNotFound",
           "SandboxUnavailable", "ToolMissing", "WaitingForInput"]


def __getattr__(name: str):
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


def load_ipython_extension(shell) -> None:
    """`%load_ext lablib` registers %%lab before any Lab exists."""
    from .notebook.magics import register
    register(shell)
