"""The bokeh.client-compatible synchronous facade.

It must work on a thread with no event loop (a script) and on a thread whose loop
is running (a kernel cell: simulated with ``asyncio.run`` of a coroutine that calls
the synchronous API). The fake server runs on its own loop in a thread
(``fakes.ServerThread``) so that the test thread can block.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import bokeh.client
import bokeh.client.session
import numpy as np
import pytest
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, ModelChangedEvent
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from fakes import FakeBokehServer, ServerThread

import bokeh_nb_client
from bokeh_nb_client import (
    DEFAULT_SERVER_WEBSOCKET_URL,
    DEFAULT_SESSION_ID,
    ClientSession,
    pull_session,
    push_session,
    show_session,
)
from bokeh_nb_client.engine import get_engine
from bokeh_nb_client.exceptions import ConnectError, SessionStateError
from bokeh_nb_client.protocol import MsgType

T = TypeVar("T")

WAIT = 5.0


def in_new_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread with no event loop (a script's main thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(WAIT * 4)


def server_document() -> Document:
    doc = Document()
    doc.title = "served"
    doc.add_root(Div(text="hello", name="div"))
    doc.add_root(ColumnDataSource(data={"x": np.arange(3.0)}, name="src"))
    return doc


def div_of(doc: Document | None) -> Div:
    assert doc is not None
    div = doc.get_model_by_name("div")
    assert isinstance(div, Div)
    return div


def set_div(text: str) -> Callable[[Document], None]:
    def change(doc: Document) -> None:
        div_of(doc).text = text

    return change


@pytest.fixture
def served() -> Iterator[ServerThread]:
    with ServerThread(FakeBokehServer(server_document())) as thread:
        yield thread


def http_url(served: ServerThread) -> str:
    """The app's http URL (the server hosts its websocket at /app/ws)."""
    return served.url.replace("ws://", "http://").removesuffix("/ws")


def engine_ident() -> int:
    async def ident() -> int:
        return threading.get_ident()

    return get_engine().submit(ident()).result(WAIT)


# -- a script: no loop on the calling thread ---------------------------------------------


def test_sync_api_without_a_loop_on_the_calling_thread(served: ServerThread) -> None:
    server = served.server

    def script() -> tuple[list[int], int]:
        session = pull_session(url=http_url(served))
        try:
            doc = session.document
            assert doc is not None
            assert doc.title == "served"
            assert session.connected
            applied_on: list[int] = []

            def record(event: DocumentChangedEvent) -> None:
                if isinstance(event, ModelChangedEvent):
                    applied_on.append(threading.get_ident())

            doc.on_change(record)
            # A local change leaves without any blocking session call.
            div_of(doc).text = "from script"
            served.call(server.wait_for_type(MsgType.PATCH_DOC))
            assert div_of(server.doc).text == "from script"
            # A server change is applied on this thread during a blocking call.
            served.call(server.change(set_div("from server")))
            session.force_roundtrip()
            assert div_of(doc).text == "from server"
            info = session.request_server_info()
            assert info["version_info"]["bokeh"] == server.version
            return applied_on, threading.get_ident()
        finally:
            session.close()

    applied_on, home = in_new_thread(script)
    assert applied_on == [home, home]  # the local change, then the server's
    assert home != engine_ident()
    assert len(server.of_type(MsgType.PATCH_DOC)) == 1  # the server change was not echoed


def test_sync_api_inside_a_running_loop_like_a_kernel_cell(served: ServerThread) -> None:
    server = served.server

    async def cell() -> tuple[list[int], int]:
        # Synchronous calls made while this thread's loop is running.
        session = pull_session(url=http_url(served))
        doc = session.document
        assert doc is not None
        applied_on: list[int] = []
        applied = asyncio.get_running_loop().create_future()

        def record(event: DocumentChangedEvent) -> None:
            if isinstance(event, ModelChangedEvent) and event.setter is not None:
                applied_on.append(threading.get_ident())
                if not applied.done():
                    applied.set_result(None)

        doc.on_change(record)
        div_of(doc).text = "from cell"
        session.force_roundtrip()
        assert div_of(server.doc).text == "from cell"
        # Between cells (here: while the coroutine awaits), server changes arrive
        # on this thread's running loop with no blocking call.
        await asyncio.wrap_future(served.submit(server.change(set_div("to idle kernel"))))
        await asyncio.wait_for(applied, WAIT)
        assert div_of(doc).text == "to idle kernel"
        # And during a blocking call.
        served.call(server.change(set_div("during a call")))
        session.force_roundtrip()
        assert div_of(doc).text == "during a call"
        session.close()
        return applied_on, threading.get_ident()

    applied_on, home = asyncio.run(cell())
    assert applied_on == [home, home]
    assert home != engine_ident()


def test_push_session_replaces_the_server_document(served: ServerThread) -> None:
    def script() -> None:
        doc = Document()
        doc.title = "pushed"
        doc.add_root(Div(text="mine", name="div"))
        with push_session(doc, url=http_url(served)) as session:
            assert session.document is doc
            div_of(doc).text = "changed after push"
            session.force_roundtrip()
        assert not session.connected
        with pytest.raises(SessionStateError):
            session.pull()

    in_new_thread(script)
    assert served.server.doc.title == "pushed"
    assert div_of(served.server.doc).text == "changed after push"


def test_blocking_methods_are_refused_from_another_thread(served: ServerThread) -> None:
    session = pull_session(url=http_url(served))  # home: this (loop-less) thread
    try:
        with pytest.raises(SessionStateError, match="thread"):
            in_new_thread(session.force_roundtrip)
        session.force_roundtrip()  # fine from the home thread
    finally:
        session.close()


# -- defaults and parity with bokeh.client -----------------------------------------------


def test_defaults_match_bokeh_client() -> None:
    assert DEFAULT_SESSION_ID == "default" == bokeh.client.session.DEFAULT_SESSION_ID
    assert DEFAULT_SERVER_WEBSOCKET_URL == "ws://localhost:5006/ws"
    assert DEFAULT_SERVER_WEBSOCKET_URL == bokeh.client.session.DEFAULT_SERVER_WEBSOCKET_URL


def test_default_client_session_is_not_connected() -> None:
    def create() -> None:
        session = ClientSession()
        assert not session.connected
        assert session.document is None
        assert len(session.id) == 44
        assert session.url == DEFAULT_SERVER_WEBSOCKET_URL
        assert session.error_reason is None
        with pytest.raises(ConnectError) as info:
            session.check_connection_errors()
        assert isinstance(info.value, OSError)
        session.close()

    in_new_thread(create)


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())


def _comparable(params: list[inspect.Parameter]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (ClientSession, bokeh.client.ClientSession),
        (pull_session, bokeh.client.pull_session),
        (push_session, bokeh.client.push_session),
        (show_session, bokeh.client.show_session),
    ],
    ids=["ClientSession", "pull_session", "push_session", "show_session"],
)
def test_signature_parity_with_bokeh_client(
    ours: Callable[..., Any], theirs: Callable[..., Any]
) -> None:
    our_params = _parameters(ours)
    extras = [p for p in our_params if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert [p.name for p in extras] in ([], ["options"])
    ours_without_extras = [
        p
        for p in our_params
        if p.name != "app_path" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert _comparable(ours_without_extras) == _comparable(_parameters(theirs))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (pull_session, bokeh.client.pull_session),
        (push_session, bokeh.client.push_session),
        (show_session, bokeh.client.show_session),
    ],
    ids=["pull_session", "push_session", "show_session"],
)
def test_positional_calls_bind_as_in_bokeh_client(
    ours: Callable[..., Any], theirs: Callable[..., Any]
) -> None:
    """A script calling the bokeh.client helpers positionally must bind the same way."""
    theirs_names = [p.name for p in _parameters(theirs)]
    ours_names = [p.name for p in _parameters(ours)]
    assert ours_names[: len(theirs_names)] == theirs_names


def test_all_lists_exactly_the_public_names() -> None:
    expected = [
        "DEFAULT_SERVER_HTTP_URL",
        "DEFAULT_SERVER_WEBSOCKET_URL",
        "DEFAULT_SESSION_ID",
        "AsyncClientSession",
        "BokehClientError",
        "ClientSession",
        "Reconnect",
        "SessionState",
        "SessionStatus",
        "StatusPanel",
        "pull_session",
        "pull_session_async",
        "push_session",
        "push_session_async",
        "show_session",
    ]
    assert bokeh_nb_client.__all__ == expected
    for name in expected:  # public names load lazily (PEP 562); load them all first
        assert getattr(bokeh_nb_client, name) is not None
    not_exported = {"annotations", "load_ipython_extension", "unload_ipython_extension"}
    public = {
        name
        for name, value in vars(bokeh_nb_client).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in not_exported
    }
    assert public == set(expected)
    for name in expected:
        assert getattr(bokeh_nb_client, name) is not None
