"""Issue 13: the behaviours of bokeh.client that users rely on, one test (or more) each.

Items 1-3 and 5 run against ``bokeh.client`` too where the behaviour is shared,
so the reference stays checked; the rest are ours alone. Item 6 (version
mismatch warning) is in ``tests/unit/test_client_compat.py`` (it needs the fake
server of the unit tests) and item 7 (Panel) in ``test_panel_interop.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.client.states import ErrorReason
from bokeh.document import Document
from bokeh.models import Div
from bokeh.server.server import Server
from bokeh_server import BokehServer, find_free_port
from tornado.ioloop import IOLoop

from bokeh_nb_client import ClientSession, pull_session, pull_session_async, push_session
from bokeh_nb_client.exceptions import HandshakeRejected, ServerOnCallersLoop, SessionStateError

from .support import Client, in_process_server, round_trips_until, url, ws_url

pytestmark = pytest.mark.interop

#: Our own per-operation timeout for these tests: without the fixes they fail with
#: ``Timeout`` after this long instead of after the default 30 s.
SHORT = 5.0


def div_app() -> Application:
    def make(doc: Document) -> None:
        doc.add_root(Div(text="in process", name="div"))

    return Application(FunctionHandler(make))


# -- 1. io_loop= -------------------------------------------------------------------------


def test_io_loop_is_run_while_a_blocking_call_waits() -> None:
    with in_process_server(div_app()) as server:
        session = pull_session(url=url(server), io_loop=server.io_loop, timeout=SHORT)
        assert session.document is not None
        assert [root.name for root in session.document.roots] == ["div"]
        server_session = server.get_session("/", session.id)
        [server_div] = server_session.document.roots

        def set_text() -> None:
            server_div.text = "changed by the server"

        server.io_loop.add_callback(server_session.with_document_locked, set_text)
        session.force_roundtrip()  # runs the server's loop, which sends the change first
        [client_div] = session.document.roots
        assert client_div.text == "changed by the server"
        session.close()


def test_io_loop_accepts_an_asyncio_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        server = Server(
            {"/": div_app()}, io_loop=IOLoop(asyncio_loop=loop), port=0, address="127.0.0.1"
        )
        server.start()
        try:
            session = pull_session(url=url(server), io_loop=loop, timeout=SHORT)
            assert session.document is not None
            assert len(session.document.roots) == 1
            session.close()
        finally:
            server.unlisten()
            server.stop()
    finally:
        loop.close()


def test_io_loop_must_be_an_event_loop() -> None:
    with pytest.raises(TypeError, match="io_loop"):
        ClientSession(io_loop="io_loop")


def test_sync_call_to_a_server_on_the_callers_running_loop_fails_at_once() -> None:
    """The kernel case: a server on the running loop, then the sync API on that thread."""

    async def main() -> None:
        server = Server({"/": div_app()}, io_loop=IOLoop.current(), port=0, address="127.0.0.1")
        server.start()
        try:
            with pytest.raises(ServerOnCallersLoop, match="pull_session_async") as info:
                pull_session(url=url(server), timeout=SHORT)
            assert isinstance(info.value, RuntimeError)
            # The same with io_loop= given (it is running here, so it changes nothing).
            session = ClientSession(
                websocket_url=ws_url(server), io_loop=IOLoop.current(), timeout=SHORT
            )
            with pytest.raises(ServerOnCallersLoop):
                session.connect()
            session.close()
            # What the error recommends works on this loop.
            pulled = await pull_session_async(url=url(server), timeout=SHORT)
            assert pulled.document is not None
            assert len(pulled.document.roots) == 1
            await pulled.close()
        finally:
            server.unlisten()
            server.stop()

    asyncio.run(main())


def test_blocking_call_from_a_callback_on_the_servers_loop_fails_at_once() -> None:
    """A document callback runs on the io_loop, i.e. on the server's loop: a blocking
    call there could never be answered. close() is fine: it completes in
    loop_until_closed()."""
    with in_process_server(Application()) as server:
        doc = Document()
        refused: list[ServerOnCallersLoop] = []
        session = push_session(doc, url=url(server), io_loop=server.io_loop, timeout=SHORT)

        def callback() -> None:
            try:
                session.force_roundtrip()
            except ServerOnCallersLoop as exc:
                refused.append(exc)
            session.close()

        doc.add_next_tick_callback(callback)
        session.loop_until_closed()
        assert len(refused) == 1
        assert not session.connected


def test_an_io_loop_that_cannot_run_here_is_refused_at_once() -> None:
    """A not running io_loop on a thread that runs another loop: it can never run."""
    with in_process_server(div_app()) as server:

        async def main() -> None:
            with pytest.raises(SessionStateError, match="io_loop is not running"):
                pull_session(url=url(server), io_loop=server.io_loop, timeout=SHORT)

        asyncio.run(main())


# -- 2. connect() records failures instead of raising ------------------------------------


def test_connect_to_a_wrong_prefix_returns_not_connected(client: Client) -> None:
    with in_process_server(Application(), prefix="foo") as server:
        session = client.ClientSession(io_loop=server.io_loop, websocket_url=ws_url(server))
        session.connect()  # does not raise
        assert not session.connected
        assert session.error_reason is ErrorReason.HTTP_ERROR
        assert session.error_code == 404
        assert session.error_detail
        with pytest.raises(OSError):  # noqa: PT011 - bokeh's check
            session.pull()
        session.close()


def test_connect_refused_returns_not_connected(client: Client) -> None:
    session = client.ClientSession(websocket_url=f"ws://127.0.0.1:{find_free_port()}/ws")
    session.connect()  # does not raise
    assert not session.connected
    assert session.error_reason is ErrorReason.NETWORK_ERROR
    with pytest.raises(OSError):  # noqa: PT011 - bokeh's check
        session.push(Document())
    session.close()


def test_helpers_still_raise_typed_errors() -> None:
    with in_process_server(Application(), prefix="foo") as server:
        with pytest.raises(HandshakeRejected) as info:
            pull_session(url=url(server), io_loop=server.io_loop, timeout=SHORT)
        assert info.value.status == 404


# -- 3. callbacks of a pushed document start after push_session returned -----------------


@pytest.mark.parametrize("kind", ["next_tick", "timeout"])
def test_callbacks_added_before_push_start_after_it_returned(client: Client, kind: str) -> None:
    with in_process_server(Application()) as server:
        doc = Document()
        order: list[str] = []
        sessions: list[object] = []

        def callback() -> None:
            order.append("callback")
            sessions.append(session)  # a NameError if it ran inside push_session

        if kind == "next_tick":
            doc.add_next_tick_callback(callback)
        else:
            doc.add_timeout_callback(callback, 0)
        session = client.push_session(doc, url=url(server), io_loop=server.io_loop)
        order.append("returned")
        client.loop_until(session, lambda: "callback" in order)
        assert order == ["returned", "callback"]
        assert sessions == [session]
        session.close()


@pytest.mark.parametrize("kind", ["next_tick", "timeout"])
def test_callbacks_added_before_push_start_after_it_returned_with_bokeh_serve(
    bokeh_server: BokehServer, kind: str
) -> None:
    """The same against a ``bokeh serve`` subprocess (no io_loop involved)."""
    doc = Document()
    order: list[str] = []

    def callback() -> None:
        order.append("callback")

    if kind == "next_tick":
        doc.add_next_tick_callback(callback)
    else:
        doc.add_timeout_callback(callback, 0)
    session = push_session(doc, url=bokeh_server.http_url("empty"))
    order.append("returned")
    round_trips_until(session, lambda: "callback" in order)
    assert order == ["returned", "callback"]
    session.close()


def test_async_push_starts_callbacks_after_it_returned() -> None:
    from bokeh_nb_client import push_session_async

    async def main() -> None:
        server = Server({"/": Application()}, io_loop=IOLoop.current(), port=0, address="127.0.0.1")
        server.start()
        try:
            doc = Document()
            order: list[str] = []
            ran = asyncio.Event()

            def callback() -> None:
                order.append("callback")
                ran.set()

            doc.add_next_tick_callback(callback)
            session = await push_session_async(doc, url=url(server), timeout=SHORT)
            order.append("returned")
            await ran.wait()
            assert order == ["returned", "callback"]
            await session.close()
        finally:
            server.unlisten()
            server.stop()

    asyncio.run(main())


# -- 5. loop_until_closed() and _loop_until_closed() --------------------------------------


@pytest.mark.parametrize("name", ["loop_until_closed", "_loop_until_closed"])
def test_both_loop_until_closed_names(bokeh_server: BokehServer, name: str) -> None:
    session = ClientSession(websocket_url=bokeh_server.ws_url("empty"))
    session.connect()
    assert session.connected
    session.close()
    getattr(session, name)()  # returns: the session has ended
    assert not session.connected
