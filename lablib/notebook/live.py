"""lab.live(): one drawing of the lab host that redraws itself after every command.

Docked beside the notebook in JupyterLab (a sidecar panel) when the sidecar package is
there, inline (an ipywidgets HTML) otherwise. A redraw reads the kernel state again,
and renders only when the network really changed.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from ..model.state import Snapshot
from ..views.drawing import draw

if TYPE_CHECKING:
    from .lab import Lab


class LiveView:
    """The self-refreshing drawing; `stop()` ends the refreshing."""

    def __init__(self, lab: Lab, *, routes: bool = False, world: bool = True, dock: bool = True) -> None:
        import ipywidgets
        from IPython.display import display

        self._lab = weakref.ref(lab)
        self.routes, self.world = routes, world
        self.widget = ipywidgets.HTML()
        self.previous: Snapshot | None = None
        self.docked = False
        if dock:
            try:
                from sidecar import Sidecar
                self._sidecar = Sidecar(title="lab host topology", anchor="split-right")
                with self._sidecar:
                    display(self.widget)
                self.docked = True
            except ImportError:
                pass
        if not self.docked:
            display(self.widget)
        self.refresh()
        lab.on_change(self.refresh)

    def refresh(self) -> None:
        lab = self._lab()
        if lab is None or not lab.alive:
            return
        current = lab.snapshot(kinds={"links", "routes"} if self.routes else {"links"})
        if self.previous is not None and _same_network(self.previous, current):
            return
        svg = draw(current, self.previous, routes=self.routes, world=self.world).pipe(format="svg")
        self.widget.value = svg.decode()
        self.previous = current

    def stop(self) -> None:
        lab = self._lab()
        if lab is not None:
            lab.remove_on_change(self.refresh)


def _same_network(before: Snapshot, after: Snapshot) -> bool:
    def shape(snapshot: Snapshot) -> tuple[dict, dict]:
        return ({name: [(l.name, l.kind, l.state, l.master, l.peer, tuple(l.addresses)) for l in ns.links]
                 for name, ns in snapshot.namespaces.items()},
                {name: [(r.dst, r.gateway, r.dev) for r in ns.routes] for name, ns in snapshot.namespaces.items()})
    return shape(before) == shape(after)
