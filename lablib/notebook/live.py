"""lab.live(): one drawing of the lab host that redraws itself after every command.

Docked beside the notebook in JupyterLab (a sidecar panel) when the sidecar package is
there, inline (an ipywidgets HTML) otherwise. A redraw reads the kernel state again,
and renders only when the network really changed. A kernel has one panel: calling
lab.live() again replaces it. The panel is given its content as widget state, not as
output of the cell, so the notebook saves no widget in the cell (which would show as
`HTML(value='')` when reopened).
"""
from __future__ import annotations

import weakref

from ..views.drawing import draw, fitted_svg

TITLE = "lab host topology"
_panel = None   # this kernel's docked panel (a Sidecar), replaced by each lab.live()


class LiveView:
    """The self-refreshing drawing; `stop()` ends the refreshing."""

    def __init__(self, lab, *, routes: bool = False, world: bool = True, dock: bool = True) -> None:
        import ipywidgets
        from IPython.display import display

        self._lab = weakref.ref(lab)
        self.routes, self.world = routes, world
        self.widget = ipywidgets.HTML()
        self.previous, self.sandbox, self.svg = None, None, ""
        self.docked = dock and _dock(self.widget)
        if self.docked:
            print(f"The drawing is docked beside the notebook (the panel “{TITLE}”); "
                  "it redraws after every command.")
        else:
            display(self.widget)
        self.refresh()
        lab.on_change(self.refresh)

    def refresh(self) -> None:
        lab = self._lab()
        if lab is None:
            return
        if not lab.alive:
            # Keep the last drawing, faded, under a line that says why it no longer changes.
            self.widget.value = (f"<div style='color:#c62828;font-weight:bold;margin:4px 0'>This lab host was "
                                 "closed: nothing below exists any more. Run lab.reset() (or Lab()) for a fresh "
                                 f"one.</div><div style='opacity:0.35'>{self.svg}</div>")
            self.previous = None
            return
        if lab.sandbox is not self.sandbox:   # a fresh lab host (reset): nothing to compare with
            self.sandbox, self.previous = lab.sandbox, None
        current = lab.snapshot(kinds={"links", "routes"} if self.routes else {"links"})
        if self.previous is not None and _same_network(self.previous, current):
            return
        svg = draw(current, self.previous, routes=self.routes, world=self.world).pipe(format="svg").decode()
        self.svg = fitted_svg(svg)
        self.widget.value = self.svg
        self.previous = current

    def stop(self) -> None:
        lab = self._lab()
        if lab is not None:
            lab.remove_on_change(self.refresh)


def _dock(widget) -> bool:
    """Show `widget` in this kernel's one docked panel; False when there is no sidecar."""
    global _panel
    try:
        from sidecar import Sidecar
    except ImportError:
        return False
    if _panel is not None:
        _panel.close()   # its panel goes away (also when the learner had closed it already)
    _panel = Sidecar(title=TITLE, anchor="split-right")
    _panel.append_display_data(widget)
    return True


def _same_network(before, after) -> bool:
    def shape(snapshot):
        return ({name: [(l.name, l.kind, l.state, l.master, l.peer, tuple(l.addresses)) for l in ns.links]
                 for name, ns in snapshot.namespaces.items()},
                {name: [(r.dst, r.gateway, r.dev) for r in ns.routes] for name, ns in snapshot.namespaces.items()})
    return shape(before) == shape(after)
