"""`lab.trace()`: start a capture in the agent, and assemble what it saw after the block."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..model.errors import LabError
from ..model.protocol import StartTrace, StopTrace
from ..views.trace import TraceResult

if TYPE_CHECKING:
    from .handle import Lab


class Tracing:
    """The context manager lab.trace() returns; its result is available after the block."""

    def __init__(self, lab: Lab, expression: str, netfilter: bool) -> None:
        self._lab, self.expression, self.netfilter = lab, expression, netfilter
        self.result: TraceResult | None = None
        self.started: float | None = None
        self._lost: str | None = None

    def __enter__(self) -> "Tracing":
        import time
        self.started = time.time()
        self._sandbox = self._lab.sandbox
        self._id = self._sandbox.call(StartTrace(self.expression, self.netfilter))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lab.sandbox is self._sandbox and self._sandbox.alive:
            recording = self._sandbox.call(StopTrace(self._id))
            self.result = TraceResult(recording, self.expression)
        else:
            self._lost = ("the lab host was closed or reset inside the `with lab.trace(...)` block, and the "
                          "trace went with it; trace again, with close() or reset() outside the block")

    def _done(self) -> TraceResult:
        if self._lost:
            raise LabError(self._lost)
        if self.result is None:
            raise LabError("the trace is still running: read it after the `with lab.trace(...)` block")
        return self.result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._done(), name)

    def __repr__(self) -> str:
        return repr(self.result) if self.result else f"<trace '{self.expression}' running>"
