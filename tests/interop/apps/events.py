"""``/events``: one server change per PATCH-DOC event kind, on request.

A client sets ``trigger.text`` to ``"<command>:<tag>"``; the server's callback
makes the change named by ``<command>`` (see ``COMMANDS`` below), then sets
``done.text`` to the whole trigger text, so the client knows every event of the
change has been sent. The models:

* ``slider`` (``value``: a plain property), ``view`` (``filter``: a model
  reference), ``select`` (``options``: a list), ``js`` (``args``: a dict);
* ``source``: a numpy column ``x``, list columns ``y`` and ``z``;
* ``image``: column ``img`` holding one 3x4 float array (an image);
* ``extra``: a root that the ``root_remove`` command removes;
* ``button``: ``send_event`` sends a ButtonClick of it (MessageSent). A client's
  ButtonClick on it is counted in ``clicks.text`` (MessageSent to the server).
"""

from __future__ import annotations

from collections.abc import Callable
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

doc = curdoc()
slider = Slider(name="slider", start=0, end=100, value=1)
view = CDSView(name="view", filter=IndexFilter(indices=[0]))
select = Select(name="select", options=["a", "b"], value="a")
js = CustomJS(name="js", args={"a": 1}, code="")
source = ColumnDataSource(
    name="source",
    data={"x": np.arange(3, dtype="float64"), "y": [1.0, 2.0, 3.0], "z": ["a", "b", "c"]},
)
image = ColumnDataSource(name="image", data={"img": [np.arange(12, dtype="float64").reshape(3, 4)]})
extra = Div(name="extra", text="extra")
button = Button(name="button")
clicks = Div(name="clicks", text="0")
trigger = Div(name="trigger", text="")
done = Div(name="done", text="")


def _stream() -> None:
    source.stream({"x": np.array([3.0, 4.0]), "y": [4.0, 5.0], "z": ["d", "e"]})


def _stream_rollover() -> None:
    source.stream({"x": np.array([3.0, 4.0]), "y": [4.0, 5.0], "z": ["d", "e"]}, rollover=4)


def _patch_nd() -> None:
    image.patch({"img": [([0, slice(0, 2), slice(1, 3)], np.array([[90.0, 91.0], [92.0, 93.0]]))]})


COMMANDS: dict[str, Callable[[], Any]] = {
    "plain": lambda: setattr(slider, "value", slider.value + 1),
    "ref": lambda: setattr(view, "filter", IndexFilter(indices=[1, 2])),
    "list": lambda: select.options.append("c"),
    "dict": lambda: js.args.update(b=2),
    "whole": lambda: setattr(source, "data", {"x": np.array([5.0, 6.0]), "w": [7, 8]}),
    "stream": _stream,
    "stream_rollover": _stream_rollover,
    "patch_index": lambda: source.patch({"y": [(0, 100.0)], "x": [(2, 50.0)]}),
    "patch_slice": lambda: source.patch(
        {"x": [(slice(0, 2), [7.0, 8.0])], "y": [(slice(1, 3), [8.0, 9.0])]}
    ),
    "patch_nd": _patch_nd,
    "root_add": lambda: doc.add_root(Div(name="added", text="added")),
    "root_remove": lambda: doc.remove_root(extra),
    "title": lambda: setattr(doc, "title", "a new title"),
    "message": lambda: doc.callbacks.send_event(ButtonClick(button)),
}


def _on_trigger(attr: str, old: Any, new: Any) -> None:
    COMMANDS[new.split(":", 1)[0]]()
    done.text = new


def _on_click(event: ButtonClick) -> None:
    clicks.text = str(int(clicks.text) + 1)


trigger.on_change("text", _on_trigger)
button.on_event(ButtonClick, _on_click)
for root in (slider, view, select, js, source, image, extra, button, clicks, trigger, done):
    doc.add_root(root)
