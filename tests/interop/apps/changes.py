"""``/changes``: cycles through every kind of server-side document change.

A periodic callback (every 50 ms, or the ``period_ms`` argument of the
session-creating request) performs one step of this script, then writes the step
number to ``phase.text`` and the number of completed cycles to ``cycle.text``:

====  ==========================================================  ===============
step  change                                                      event
====  ==========================================================  ===============
0     ``add_root(Div(name="added", text="added"))`` (a new model)  RootAdded
1     ``doc.title = "changed"``                                   TitleChanged
2     ``added.text = "changed"``                                  ModelChanged
3     ``remove_root(added)``                                      RootRemoved
4     ``doc.title = "changes"`` (back to the initial title)        TitleChanged
====  ==========================================================  ===============

Step 4 exists because Bokeh emits no event when a title is set to its current
value, so without it only the first cycle would change the title. A fresh
``added`` Div (with a new id) is created in every cycle. ``phase`` starts as
``"-1"`` before the first step, and ``cycle`` as ``"0"``.
"""

from __future__ import annotations

from collections.abc import Callable

from bokeh.io import curdoc
from bokeh.models import Div

DEFAULT_PERIOD_MS = 50
INITIAL_TITLE = "changes"

doc = curdoc()
doc.title = INITIAL_TITLE

phase = Div(name="phase", text="-1")
cycle = Div(name="cycle", text="0")
doc.add_root(phase)
doc.add_root(cycle)


class _Script:
    """Where the script stands: the next step, completed cycles, the added Div."""

    def __init__(self) -> None:
        self.step = 0
        self.cycles = 0
        self.added: Div | None = None

    def add_root(self) -> None:
        self.added = Div(name="added", text="added")
        doc.add_root(self.added)

    def set_title(self) -> None:
        doc.title = "changed"

    def change_text(self) -> None:
        if self.added is not None:
            self.added.text = "changed"

    def remove_root(self) -> None:
        if self.added is not None:
            doc.remove_root(self.added)
            self.added = None

    def restore_title(self) -> None:
        doc.title = INITIAL_TITLE

    def advance(self) -> None:
        """Perform the next step and publish it in ``phase`` (and ``cycle``)."""
        steps: tuple[Callable[[], None], ...] = (
            self.add_root,
            self.set_title,
            self.change_text,
            self.remove_root,
            self.restore_title,
        )
        steps[self.step]()
        phase.text = str(self.step)
        if self.step == len(steps) - 1:
            self.cycles += 1
            cycle.text = str(self.cycles)
        self.step = (self.step + 1) % len(steps)


def _period_ms() -> int:
    request = doc.session_context.request if doc.session_context else None
    values = request.arguments.get("period_ms", []) if request is not None else []
    return int(values[0]) if values else DEFAULT_PERIOD_MS


doc.add_periodic_callback(_Script().advance, _period_ms())
