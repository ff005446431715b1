"""The changes of the ``events`` app, one per PATCH-DOC event kind, by command name.

Each change takes the document and finds its models by name, so the app (in a
server callback) and a test (on a client's copy of the same session) make exactly
the same change. The event kind bokeh sends for each is in ``KIND``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.events import ButtonClick
from bokeh.models import Div, IndexFilter


def _model(doc: Document, name: str) -> Any:
    model = doc.select_one({"name": name})
    if model is None:
        raise LookupError(f"no model named {name!r}")
    return model


def _stream(doc: Document, rollover: int | None) -> None:
    data = {"x": np.array([3.0, 4.0]), "y": [4.0, 5.0], "z": ["d", "e"]}
    _model(doc, "source").stream(data, rollover=rollover)


def _patch_nd(doc: Document) -> None:
    block = np.array([[90.0, 91.0], [92.0, 93.0]])
    _model(doc, "image").patch(
        {
            "img": [([0, slice(0, 2), slice(1, 3)], block)],
            "row": [([0, slice(1, None, 2)], [70.0, 71.0])],
        }
    )


def _combined(doc: Document) -> None:
    """Several kinds under one ``hold("combine")``: sent together, applied in order."""
    doc.hold("combine")
    try:
        _stream(doc, None)
        _model(doc, "source").patch({"y": [(slice(3, 5), [40.0, 50.0])]})
        _stream(doc, 3)
        _model(doc, "slider").value = 9
        _model(doc, "slider").value = 10
        doc.add_root(Div(name="added", text="added"))
        doc.title = "combined"
    finally:
        doc.unhold()


CHANGES: dict[str, Callable[[Document], object]] = {
    "plain": lambda doc: setattr(_model(doc, "slider"), "value", 7),
    "ref": lambda doc: setattr(_model(doc, "view"), "filter", IndexFilter(indices=[1, 2])),
    "list": lambda doc: _model(doc, "select").options.append("c"),
    "dict": lambda doc: _model(doc, "js").args.update(b=2),
    "whole": lambda doc: setattr(
        _model(doc, "source"), "data", {"x": np.array([5.0, 6.0]), "w": [7, 8]}
    ),
    "stream": lambda doc: _stream(doc, None),
    "stream_rollover": lambda doc: _stream(doc, 4),
    "stream_empty": lambda doc: _model(doc, "empty").stream(
        {"q": [1, 2], "r": np.array([0.5, 1.5])}, rollover=1
    ),
    "patch_index": lambda doc: _model(doc, "source").patch({"y": [(0, 100.0)], "x": [(2, 50.0)]}),
    "patch_slice": lambda doc: _model(doc, "source").patch(
        {"x": [(slice(0, 2), [7.0, 8.0])], "y": [(slice(None, None, 2), [8.0, 9.0])]}
    ),
    "patch_nd": _patch_nd,
    "root_add": lambda doc: doc.add_root(Div(name="added", text="added")),
    "root_remove": lambda doc: doc.remove_root(_model(doc, "extra")),
    "title": lambda doc: setattr(doc, "title", "a new title"),
    "combined": _combined,
    "message": lambda doc: doc.callbacks.send_event(ButtonClick(_model(doc, "button"))),
}

#: Changes that older bokeh cannot make at all (its own ``stream``/``patch`` raises,
#: in the server app as in the client), with the first bokeh minor that can:
#: streaming into a source with no columns ("Must stream updates to all existing
#: columns") before 3.9, and a multi-dimensional patch under numpy 2 (bokeh's
#: ``np.array(..., copy=False)``) before 3.8.
SINCE: dict[str, tuple[int, int]] = {"stream_empty": (3, 9), "patch_nd": (3, 8)}

KIND: dict[str, str] = {
    "plain": "ModelChanged",
    "ref": "ModelChanged",
    "list": "ModelChanged",
    "dict": "ModelChanged",
    "whole": "ColumnDataChanged",
    "stream": "ColumnsStreamed",
    "stream_rollover": "ColumnsStreamed",
    "stream_empty": "ColumnsStreamed",
    "patch_index": "ColumnsPatched",
    "patch_slice": "ColumnsPatched",
    "patch_nd": "ColumnsPatched",
    "root_add": "RootAdded",
    "root_remove": "RootRemoved",
    "title": "TitleChanged",
    "combined": "ColumnsStreamed",
    "message": "MessageSent",
}
