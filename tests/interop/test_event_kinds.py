"""Every PATCH-DOC event kind bokeh 3.x sends, both ways, against a real server.

For each kind (issue 11, item 5), with the ``events`` app:

* server to client: the app makes the change in a server callback; the client's
  document must then equal a fresh pull of the same session (what BokehJS would
  show, since a page load is such a pull);
* client to server: the client makes the change; a second session pulling the
  same session id must then see exactly the client's document.

A partial ColumnDataChanged (``source.data["y"] = ...``) is tested in
``test_session_correctness.py`` (``test_partial_column_data_change_*``, the
``partial`` app) and is not repeated here. Waits are on document changes
(``poll_until`` round trips), never on time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from bokeh.core.has_props import HasProps
from bokeh.document import Document
from bokeh.events import ButtonClick
from bokeh.models import Div, IndexFilter
from bokeh_server import BokehServer
from waiting import poll_until

from bokeh_nb_client import ClientSession, pull_session

pytestmark = pytest.mark.interop


# -- comparing documents --------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as plain data: models by id, arrays and tuples as lists."""
    if isinstance(value, HasProps):
        return {"ref": value.id} if hasattr(value, "id") else _props(value)
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "shape": list(value.shape)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _props(obj: HasProps) -> dict[str, Any]:
    values = obj.properties_with_values(include_defaults=True)
    return {"type": type(obj).__name__, **{k: _plain(v) for k, v in sorted(values.items())}}


def snapshot(doc: Document) -> dict[str, Any]:
    """Everything a peer syncs of ``doc``: title, roots and every model's properties."""
    return {
        "title": doc.title,
        "roots": [root.id for root in doc.roots],
        "models": {model.id: _props(model) for model in doc.models},
    }


def fresh_snapshot(server: BokehServer, session_id: str) -> dict[str, Any]:
    with pull_session(session_id=session_id, url=server.http_url("events")) as observer:
        assert observer.document is not None
        return snapshot(observer.document)


def _model(doc: Document, name: str) -> Any:
    model = doc.select_one({"name": name})
    assert model is not None, name
    return model


# -- the changes, as a client makes them (the app makes the same ones) ---------------


def _stream(doc: Document, rollover: int | None) -> None:
    data = {"x": np.array([3.0, 4.0]), "y": [4.0, 5.0], "z": ["d", "e"]}
    _model(doc, "source").stream(data, rollover=rollover)


CLIENT_CHANGES: dict[str, Callable[[Document], object]] = {
    "plain": lambda doc: setattr(_model(doc, "slider"), "value", 7),
    "ref": lambda doc: setattr(_model(doc, "view"), "filter", IndexFilter(indices=[1, 2])),
    "list": lambda doc: _model(doc, "select").options.append("c"),
    "dict": lambda doc: _model(doc, "js").args.update(b=2),
    "whole": lambda doc: setattr(
        _model(doc, "source"), "data", {"x": np.array([5.0, 6.0]), "w": [7, 8]}
    ),
    "stream": lambda doc: _stream(doc, None),
    "stream_rollover": lambda doc: _stream(doc, 4),
    "patch_index": lambda doc: _model(doc, "source").patch({"y": [(0, 100.0)], "x": [(2, 50.0)]}),
    "patch_slice": lambda doc: _model(doc, "source").patch(
        {"x": [(slice(0, 2), [7.0, 8.0])], "y": [(slice(1, 3), [8.0, 9.0])]}
    ),
    "patch_nd": lambda doc: _model(doc, "image").patch(
        {"img": [([0, slice(0, 2), slice(1, 3)], np.array([[90.0, 91.0], [92.0, 93.0]]))]}
    ),
    "root_add": lambda doc: doc.add_root(Div(name="added", text="added")),
    "root_remove": lambda doc: doc.remove_root(_model(doc, "extra")),
    "title": lambda doc: setattr(doc, "title", "a new title"),
}

KINDS = sorted(CLIENT_CHANGES)


def _run_on_server(session: ClientSession, command: str) -> Document:
    doc = session.document
    assert doc is not None
    text = f"{command}:{session.id}"
    _model(doc, "trigger").text = text
    done = _model(doc, "done")
    poll_until(session, lambda: done.text == text)
    return doc


# -- server to client ---------------------------------------------------------------


@pytest.mark.parametrize("command", KINDS)
def test_server_change_reaches_client_as_a_fresh_pull_shows_it(
    bokeh_server: BokehServer, command: str
) -> None:
    with pull_session(url=bokeh_server.http_url("events")) as session:
        assert session.document is not None
        before = snapshot(session.document)
        doc = _run_on_server(session, command)
        after = snapshot(doc)
        assert after != before  # the change arrived
        assert after == fresh_snapshot(bokeh_server, session.id)


def test_server_message_reaches_client_message_callbacks(bokeh_server: BokehServer) -> None:
    """MessageSent ("bokeh_event"): the server's ``send_event`` reaches ``doc.on_message``.

    (A ``button.on_event`` added after the pull would not run, in bokeh's own client
    too: bokeh subscribes a model's event callbacks only when it joins a document.)
    """
    with pull_session(url=bokeh_server.http_url("events")) as session:
        assert session.document is not None
        button = _model(session.document, "button")
        seen: list[Any] = []
        session.document.on_message("bokeh_event", seen.append)
        doc = _run_on_server(session, "message")
        assert [type(event) for event in seen] == [ButtonClick]
        assert seen[0].model is button
        assert snapshot(doc) == fresh_snapshot(bokeh_server, session.id)


# -- client to server ---------------------------------------------------------------


@pytest.mark.parametrize("command", KINDS)
def test_client_change_reaches_server_as_the_client_has_it(
    bokeh_server: BokehServer, command: str
) -> None:
    with pull_session(url=bokeh_server.http_url("events")) as session:
        doc = session.document
        assert doc is not None
        before = snapshot(doc)
        CLIENT_CHANGES[command](doc)
        session.force_roundtrip()
        assert session.status.last_error is None
        seen = fresh_snapshot(bokeh_server, session.id)
        assert seen != before  # the change arrived
        assert seen == snapshot(doc)


def test_client_message_reaches_server_model_event_callbacks(bokeh_server: BokehServer) -> None:
    """MessageSent ("bokeh_event") from the client runs the server's ``on_event``, as a click."""
    with pull_session(url=bokeh_server.http_url("events")) as session:
        doc = session.document
        assert doc is not None
        clicks = _model(doc, "clicks")
        doc.callbacks.send_event(ButtonClick(_model(doc, "button")))
        poll_until(session, lambda: clicks.text == "1")
        assert snapshot(doc) == fresh_snapshot(bokeh_server, session.id)
