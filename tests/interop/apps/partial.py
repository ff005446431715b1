"""``/partial``: server callbacks that change only some columns of a data source.

``source`` starts with columns ``x``, ``y`` and ``z``. When a client sets
``trigger.text``, the server's ``on_change`` callback runs
``source.data["y"] = [...]`` (values ``10 * x``), which bokeh sends as a
ColumnDataChanged event naming only column ``y``; ``done.text`` then echoes the
trigger text, so a client knows the change was made.
"""

from __future__ import annotations

from typing import Any

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

doc = curdoc()
source = ColumnDataSource(
    name="source", data={"x": [1, 2, 3], "y": [0, 0, 0], "z": ["a", "b", "c"]}
)
trigger = Div(name="trigger", text="")
done = Div(name="done", text="")


def _on_trigger(attr: str, old: Any, new: Any) -> None:
    source.data["y"] = [10 * x for x in source.data["x"]]
    done.text = new


trigger.on_change("text", _on_trigger)
for root in (source, trigger, done):
    doc.add_root(root)
