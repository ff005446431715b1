"""``/events``: one server change per PATCH-DOC event kind, on request.

A client sets ``trigger.text`` to ``"<command>:<tag>"``; the server's callback
makes the change named by ``<command>`` (``apphelpers.event_changes.CHANGES``,
which a test can make on its client copy too), then sets ``done.text`` to the
whole trigger text, so the client knows every event of the change was sent.
The models:

* ``slider`` (``value``: a plain property), ``view`` (``filter``: a model
  reference), ``select`` (``options``: a list), ``js`` (``args``: a dict);
* ``source``: a numpy column ``x``, list columns ``y`` and ``z``;
* ``image``: column ``img`` holding one 3x4 float array (an image) and column
  ``row`` holding one 1-d array of 4 (two-part patch indices);
* ``empty``: a source with no columns;
* ``extra``: a root that ``root_remove`` removes;
* ``button``: ``message`` sends a ButtonClick of it (MessageSent); a client's
  ButtonClick on it adds one to ``clicks.text`` (MessageSent to the server).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.events import ButtonClick
from bokeh.io import curdoc
from bokeh.models import (
    Button,
    CDSView,
    ColumnDataSource,
    CustomJS,
    Div,
    IndexFilter,
    Select,
    Slider,
)

# See large.py: helpers are imported as the package ``apphelpers``.
_INTEROP_DIR = str(Path(__file__).resolve().parents[1])
if _INTEROP_DIR not in sys.path:
    sys.path.insert(0, _INTEROP_DIR)

from apphelpers.event_changes import CHANGES  # noqa: E402

doc = curdoc()
clicks = Div(name="clicks", text="0")
trigger = Div(name="trigger", text="")
done = Div(name="done", text="")
button = Button(name="button")
roots = [
    Slider(name="slider", start=0, end=100, value=1),
    CDSView(name="view", filter=IndexFilter(indices=[0])),
    Select(name="select", options=["a", "b"], value="a"),
    CustomJS(name="js", args={"a": 1}, code=""),
    ColumnDataSource(
        name="source",
        data={"x": np.arange(3, dtype="float64"), "y": [1.0, 2.0, 3.0], "z": ["a", "b", "c"]},
    ),
    ColumnDataSource(
        name="image",
        data={
            "img": [np.arange(12, dtype="float64").reshape(3, 4)],
            "row": [np.arange(4, dtype="float64")],
        },
    ),
    ColumnDataSource(name="empty", data={}),
    Div(name="extra", text="extra"),
    button,
    clicks,
    trigger,
    done,
]


def _on_trigger(attr: str, old: Any, new: Any) -> None:
    CHANGES[new.split(":", 1)[0]](doc)
    done.text = new


def _on_click(event: ButtonClick) -> None:
    clicks.text = str(int(clicks.text) + 1)


trigger.on_change("text", _on_trigger)
button.on_event(ButtonClick, _on_click)
for root in roots:
    doc.add_root(root)
