"""What the notebook side's helpers (results, tracing, checks, builder, magics) may ask
of the Lab they are handed: a structural type, so they need not import lab.py (which
imports them)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from ..model.state import Snapshot
    from .sandbox import Sandbox


class Lab(Protocol):
    """The parts of a `Lab` its helpers use."""
    timeout: float

    @property
    def sandbox(self) -> Sandbox: ...

    @property
    def alive(self) -> bool: ...

    def sh(self, command: str, ns: str | None = None, *, check: bool = True, timeout: float | None = None,
           on_output: Callable[[str, bytes], None] | None = None, together: bool = False) -> Any: ...   # a CommandResult

    def spawn(self, command: str, ns: str | None = None, **options: Any) -> Any: ...   # a BackgroundProcess

    def snapshot(self, kinds: set[str] | None = None, namespaces: list[str] | None = None,
                 world: bool = False) -> Snapshot: ...

    def namespaces(self) -> list[str]: ...

    def on_change(self, hook: Callable[[], None]) -> None: ...

    def remove_on_change(self, hook: Callable[[], None]) -> None: ...
