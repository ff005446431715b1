"""AsyncClientSession with a real bokeh Document against the scripted fake server.

Most tests serve ``FakeBokehServer`` over an in-process aiohttp websocket on
127.0.0.1 (``fakes.hosted``); the ones at the end go through the session's
transport seam (``transport_factory=``) with the in-memory transport
(``fakes.InMemory``). Session and server run on one ``asyncio.run`` loop. Nothing
here patches library internals.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, ModelChangedEvent
from bokeh.model import Model
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from bokeh.util.token import get_session_id
from fakes import FakeBokehServer, InMemory, ServerEnd, hosted

from bokeh_nb_client import AsyncClientSession, SessionState
from bokeh_nb_client.exceptions import (
    ConnectionClosed,
    HandshakeRejected,
    MessageTooBig,
    ServerError,
    SessionStateError,
    VersionMismatchWarning,
)
from bokeh_nb_client.protocol import MsgType, WireMessage

M = TypeVar("M", bound=Model)

TIMEOUT = 5.0


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def checked() -> None:
        await asyncio.wait_for(main(), TIMEOUT * 4)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == [], f"tasks leaked: {leftover}"

    asyncio.run(checked())


def server_document() -> Document:
    doc = Document()
    doc.title = "server doc"
    doc.add_root(Div(text="hello", name="div"))
    doc.add_root(ColumnDataSource(data={"x": np.arange(4.0), "y": [1, 2, 3, 4]}, name="src"))
    doc.add_root(ColumnDataSource(data={"t": [], "v": []}, name="ticks"))
    return doc


def model(doc: Document | None, name: str, cls: type[M]) -> M:
    assert doc is not None
    found = doc.get_model_by_name(name)
    assert isinstance(found, cls), found
    return found


def set_text(name: str, text: str) -> Callable[[Document], None]:
    def change(doc: Document) -> None:
        model(doc, name, Div).text = text

    return change


@asynccontextmanager
async def pulled(server: FakeBokehServer, **options: Any) -> AsyncIterator[AsyncClientSession]:
    """A session on ``server`` that has pulled the document."""
    async with hosted(server) as url:
        session = AsyncClientSession(websocket_url=url, timeout=TIMEOUT, **options)
        try:
            await session.pull()
            yield session
        finally:
            await session.close()


# -- pull --------------------------------------------------------------------------------


def test_pull_creates_the_document() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with hosted(server) as url:
            session = AsyncClientSession(websocket_url=url, timeout=TIMEOUT)
            assert session.document is None
            assert not session.connected
            await session.pull()
            doc = session.document
            assert doc is not None
            assert doc.title == "server doc"
            assert [root.name for root in doc.roots] == ["div", "src", "ticks"]
            assert model(doc, "div", Div).text == "hello"
            x = model(doc, "src", ColumnDataSource).data["x"]
            assert isinstance(x, np.ndarray)
            assert x.dtype == np.float64
            np.testing.assert_array_equal(x, np.arange(4.0))
            assert session.connected
            assert session.status.state is SessionState.CONNECTED
            assert session.status.roots == 3
            assert session.server_info == {
                "version_info": {"bokeh": server.version, "server": server.version}
            }
            # The token travels as the second subprotocol and names this session.
            assert get_session_id(server.tokens[0]) == session.id
            assert [m.msgtype for m in server.received] == ["SERVER-INFO-REQ", "PULL-DOC-REQ"]
            await session.close()
            assert session.status.state is SessionState.CLOSED
            await server.wait_for(lambda: server.close_codes == [1000])

    run(main)


def test_second_pull_overwrites_the_same_document_in_place() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            doc = session.document
            model(server.doc, "div", Div).text = "changed quietly"  # no patch sent
            await session.pull()
            assert session.document is doc
            assert model(doc, "div", Div).text == "changed quietly"
            await session.force_roundtrip()
            assert server.of_type(MsgType.PATCH_DOC) == []

    run(main)


def test_pull_error_reply_raises_server_error() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        server.errors[MsgType.PULL_DOC_REQ] = "RuntimeError('no document')"
        async with (
            hosted(server) as url,
            AsyncClientSession(websocket_url=url, timeout=TIMEOUT) as session,
        ):
            with pytest.raises(ServerError) as info:
                await session.pull()
            assert info.value.text == "RuntimeError('no document')"
            assert session.document is None
            assert session.connected  # an ERROR reply does not end the connection

    run(main)


def test_wrong_app_path_is_handshake_rejected_404() -> None:
    async def main() -> None:
        server = FakeBokehServer()
        async with hosted(server) as url:
            session = AsyncClientSession(websocket_url=url.replace("/app/ws", "/nope/ws"))
            with pytest.raises(HandshakeRejected) as info:
                await session.pull()
            assert info.value.status == 404
            assert session.status.state is SessionState.ERROR
            await session.close()

    run(main)


def test_server_version_mismatch_warns() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document(), version="2.4.3")
        async with (
            hosted(server) as url,
            AsyncClientSession(websocket_url=url, timeout=TIMEOUT) as session,
        ):
            with pytest.warns(VersionMismatchWarning, match="2.4.3"):
                await session.request_server_info()  # SERVER-INFO is pipelined at connect

    run(main)


# -- echo suppression --------------------------------------------------------------------


def test_server_patches_are_applied_with_the_session_as_setter_and_not_echoed() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            assert session.document is not None
            seen: list[DocumentChangedEvent] = []
            session.document.on_change(seen.append)
            await server.change(set_text("div", "from server"))
            await session.force_roundtrip()
            assert model(session.document, "div", Div).text == "from server"
            [event] = seen
            assert isinstance(event, ModelChangedEvent)
            setter: object = event.setter
            assert setter is session
            assert server.of_type(MsgType.PATCH_DOC) == []

    run(main)


def test_client_changes_are_sent_and_applied_by_the_server() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            model(session.document, "div", Div).text = "from client"
            await session.force_roundtrip()
            [event] = server.patch_events()
            assert event["kind"] == "ModelChanged"
            assert event["attr"] == "text"
            assert event["new"] == "from client"
            assert model(server.doc, "div", Div).text == "from client"
            assert server.patch_failures == []

    run(main)


def test_client_changes_leave_without_a_blocking_call() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            model(session.document, "div", Div).text = "live"
            await server.wait_for_type(MsgType.PATCH_DOC)
            assert model(server.doc, "div", Div).text == "live"

    run(main)


# -- batching ----------------------------------------------------------------------------


def test_changes_made_without_yielding_leave_in_few_patch_docs() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            div = model(session.document, "div", Div)
            ticks = model(session.document, "ticks", ColumnDataSource)
            for i in range(200):
                div.text = f"text {i}"
            for i in range(300):
                ticks.stream({"t": [i], "v": [i * 10]})
            await session.force_roundtrip()
            patches = server.of_type(MsgType.PATCH_DOC)
            assert 1 <= len(patches) <= 2
            streamed = [e for e in server.patch_events() if e["kind"] == "ColumnsStreamed"]
            assert len(streamed) == 1
            server_ticks = model(server.doc, "ticks", ColumnDataSource)
            assert list(server_ticks.data["t"]) == list(range(300))
            assert list(server_ticks.data["v"]) == [i * 10 for i in range(300)]
            assert model(server.doc, "div", Div).text == "text 199"
            assert server.patch_failures == []

    run(main)


def test_streams_with_different_rollover_are_not_merged() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            ticks = model(session.document, "ticks", ColumnDataSource)
            ticks.stream({"t": [1], "v": [1]})
            ticks.stream({"t": [2], "v": [2]}, rollover=5)
            ticks.stream({"t": [3], "v": [3]}, rollover=5)
            await session.force_roundtrip()
            streamed = [e for e in server.patch_events() if e["kind"] == "ColumnsStreamed"]
            assert [e.get("rollover") for e in streamed] == [None, 5]
            assert list(model(server.doc, "ticks", ColumnDataSource).data["t"]) == [1, 2, 3]

    run(main)


# -- push --------------------------------------------------------------------------------


def test_patches_between_push_and_its_ok_are_ignored() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())

        async def echo_title(end: ServerEnd, request: WireMessage) -> None:
            if request.msgtype == MsgType.PUSH_DOC:
                events = [{"kind": "TitleChanged", "title": "server echo"}]
                await end.send_message(MsgType.PATCH_DOC, {"events": events})

        server.before_reply = echo_title
        async with (
            hosted(server) as url,
            AsyncClientSession(websocket_url=url, timeout=TIMEOUT) as session,
        ):
            doc = Document()
            doc.title = "pushed"
            div = Div(text="mine", name="mine")
            doc.add_root(div)
            await session.push(doc)
            await session.force_roundtrip()
            assert session.document is doc
            assert doc.title == "pushed"
            assert list(doc.roots) == [div]
            # No re-pull was triggered and nothing was echoed back.
            assert server.of_type(MsgType.PULL_DOC_REQ) == []
            assert server.of_type(MsgType.PATCH_DOC) == []
            assert model(server.doc, "mine", Div).text == "mine"
            # After the OK, server patches apply again.
            await server.change(set_text("mine", "after push"))
            await session.force_roundtrip()
            assert div.text == "after push"

    run(main)


def test_push_then_changes_are_sent() -> None:
    async def main() -> None:
        server = FakeBokehServer()
        async with (
            hosted(server) as url,
            AsyncClientSession(websocket_url=url, timeout=TIMEOUT) as session,
        ):
            doc = Document()
            source = ColumnDataSource(data={"a": [1, 2]}, name="s")
            doc.add_root(source)
            await session.push(doc)
            source.data = {"a": [3, 4, 5]}
            await session.force_roundtrip()
            assert list(model(server.doc, "s", ColumnDataSource).data["a"]) == [3, 4, 5]
            with pytest.raises(ValueError, match="different document"):
                await session.push(Document())

    run(main)


def test_a_push_too_big_to_send_leaves_the_server_untouched() -> None:
    """Before bokeh 3.9 the arrays follow the PUSH-DOC in a PATCH-DOC: check both first."""

    async def main() -> None:
        server = FakeBokehServer()
        async with (
            hosted(server) as url,
            AsyncClientSession(
                websocket_url=url, timeout=TIMEOUT, max_message_size=1_000_000
            ) as session,
        ):
            doc = Document()
            doc.add_root(ColumnDataSource(data={"x": np.zeros(500_000)}, name="s"))
            with pytest.raises(MessageTooBig, match="max_message_size"):
                await session.push(doc)
            await session.force_roundtrip()
            assert server.of_type(MsgType.PUSH_DOC) == []
            assert server.of_type(MsgType.PATCH_DOC) == []

    run(main)


# -- re-pull -----------------------------------------------------------------------------


def test_patch_with_unknown_reference_triggers_a_repull_without_root_events() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            doc = session.document
            assert doc is not None
            model(server.doc, "div", Div).text = "missed update"  # never sent as a patch
            bad = {"kind": "ModelChanged", "model": {"id": "no-such-id"}, "attr": "x", "new": 1}
            await server.send_patch({"events": [bad]})
            await server.wait_for_type(MsgType.PULL_DOC_REQ, count=2)
            await session.force_roundtrip()
            assert session.document is doc
            assert model(doc, "div", Div).text == "missed update"
            assert "re-pulled" in (session.status.last_error or "")
            # The re-pull replaced roots locally without telling the server.
            assert server.of_type(MsgType.PATCH_DOC) == []
            # And the replaced models are live: a change to one reaches the server.
            model(doc, "div", Div).text = "after re-pull"
            await session.force_roundtrip()
            assert model(server.doc, "div", Div).text == "after re-pull"
            assert server.patch_failures == []

    run(main)


# -- buffers -----------------------------------------------------------------------------


def test_numpy_columns_travel_as_binary_buffers_both_ways() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            src = model(session.document, "src", ColumnDataSource)
            # Client -> server.
            src.data = {"x": np.linspace(0.0, 1.0, 1000), "y": np.arange(1000, dtype=np.int32)}
            await session.force_roundtrip()
            [patch] = server.of_type(MsgType.PATCH_DOC)
            assert len(patch.buffers) == 2
            server_src = model(server.doc, "src", ColumnDataSource)
            np.testing.assert_array_equal(server_src.data["x"], np.linspace(0.0, 1.0, 1000))
            assert np.asarray(server_src.data["y"]).dtype == np.int32
            # Server -> client.

            def server_change(doc: Document) -> None:
                model(doc, "src", ColumnDataSource).data = {
                    "x": np.full(500, 2.5),
                    "y": np.arange(500, dtype=np.int32),
                }

            await server.change(server_change)
            await session.force_roundtrip()
            assert isinstance(src.data["x"], np.ndarray)
            np.testing.assert_array_equal(src.data["x"], np.full(500, 2.5))
            assert np.asarray(src.data["y"]).dtype == np.int32
            assert len(server.of_type(MsgType.PATCH_DOC)) == 1  # not echoed

    run(main)


# -- errors, close -----------------------------------------------------------------------


def test_force_roundtrip_raises_server_error_for_a_rejected_patch_once() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        server.reject_patches = "ValueError('rejected by test')"
        async with pulled(server) as session:
            model(session.document, "div", Div).text = "refused"
            with pytest.raises(ServerError) as info:
                await session.force_roundtrip()
            assert info.value.text == "ValueError('rejected by test')"
            await session.force_roundtrip()  # reported once
            assert session.connected

    run(main)


def test_closed_session_raises_session_state_error() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with hosted(server) as url:
            session = AsyncClientSession(websocket_url=url, timeout=TIMEOUT)
            await session.pull()
            await session.close()
            await session.close()  # idempotent
            assert not session.connected
            for call in (
                session.connect,
                session.pull,
                session.push,
                session.request_server_info,
                session.force_roundtrip,
            ):
                with pytest.raises(SessionStateError):
                    await call()
            assert session.document is not None  # still usable locally

    run(main)


def test_close_flushes_queued_changes() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with hosted(server) as url:
            session = AsyncClientSession(websocket_url=url, timeout=TIMEOUT)
            await session.pull()
            model(session.document, "div", Div).text = "last words"
            await session.close()
            await server.wait_for(lambda: server.close_codes != [])
            assert [e["new"] for e in server.patch_events()] == ["last words"]
            assert server.close_codes == [1000]

    run(main)


def test_close_waits_for_a_large_batch_being_written() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with hosted(server) as url:
            session = AsyncClientSession(websocket_url=url, timeout=TIMEOUT)
            await session.pull()
            src = model(session.document, "src", ColumnDataSource)
            src.data = {"x": np.arange(2_000_000, dtype=np.float64), "y": np.zeros(2_000_000)}
            await asyncio.sleep(0)  # the writer starts sending the batch
            await session.close()
            await server.wait_for(lambda: server.close_codes != [])
            assert len(server.of_type(MsgType.PATCH_DOC)) == 1
            assert len(model(server.doc, "src", ColumnDataSource).data["x"]) == 2_000_000

    run(main)


def test_server_close_ends_the_session_and_later_requests_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server, reconnect=None) as session:
            [end] = server.ends
            await end.peer.close(4000, "kicked out")
            await asyncio.wait_for(session.wait_closed(), TIMEOUT)
            assert not session.connected
            assert session.status.state is SessionState.ERROR
            assert isinstance(session.last_error, ConnectionClosed)
            assert session.last_error.code == 4000
            assert session.error_code == 4000
            assert "kicked out" in session.error_detail
            with pytest.raises(ConnectionClosed):
                await session.pull()
            with caplog.at_level(logging.WARNING, logger="bokeh_nb_client.session"):
                model(session.document, "div", Div).text = "nobody listens"
            assert "not sent" in caplog.text

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(main)


def test_default_policy_reconnects_and_re_pulls_after_the_server_drops_it() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        async with pulled(server) as session:
            doc = session.document
            [end] = server.ends
            model(server.doc, "div", Div).text = "changed while away"
            await end.peer.close(1011, "server restarting")
            await server.wait_for_type(MsgType.PULL_DOC_REQ, count=2)
            await server.wait_for(lambda: len(server.ends) == 1 and server.ends[0] is not end)
            await session.force_roundtrip()
            assert session.connected
            assert session.document is doc
            assert model(doc, "div", Div).text == "changed while away"
            assert session.status.state is SessionState.CONNECTED
            assert server.of_type(MsgType.PATCH_DOC) == []

    run(main)


# -- the transport seam --------------------------------------------------------------


def test_session_over_the_in_memory_transport_through_the_seam() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        memory = InMemory(server)
        session = AsyncClientSession(
            websocket_url="ws://memory.invalid/app/ws", transport_factory=memory.open
        )
        async with session:
            await session.pull()
            assert session.connected
            doc = session.document
            assert doc is not None
            div = doc.select_one({"name": "div"})
            assert div.text == "hello"
            div.text = "from the client"
            await session.force_roundtrip()
            assert server.doc.select_one({"name": "div"}).text == "from the client"
        assert memory.tokens and memory.tokens[0]
        await memory.aclose()

    run(main)


def test_interrupted_first_connect_does_not_stay_connecting() -> None:
    async def main() -> None:
        server = FakeBokehServer(server_document())
        server.send_ack = False  # the connect hangs waiting for ACK
        memory = InMemory(server)
        session = AsyncClientSession(
            websocket_url="ws://memory.invalid/app/ws", transport_factory=memory.open
        )
        entered = asyncio.Event()
        session.subscribe(
            lambda status: entered.set() if status.state is SessionState.CONNECTING else None
        )
        connecting = asyncio.ensure_future(session.connect())
        await entered.wait()
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        assert session.status.state is SessionState.NOT_CONNECTED
        await session.close()
        await memory.aclose()

    run(main)
