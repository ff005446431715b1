"""The same hostile servers through ``AsyncClientSession``, on the test's own loop.

Here the session's tasks live on the test's loop, so each test checks directly
that none is left running once the connection has failed or the session closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from bokeh.models.widgets import Div
from hostile_checks import other_tasks_after_settling, stopwatch
from hostile_server import FakeServer, Peer, message_frames

from bokeh_nb_client import AsyncClientSession, SessionState, pull_session_async
from bokeh_nb_client.exceptions import (
    ConnectionClosedError,
    HandshakeRejected,
    RemoteProtocolError,
    ServerError,
    Timeout,
)
from bokeh_nb_client.protocol import MsgType

TIMEOUT = 2.0
FAST = 1.5
OPTIONS: dict[str, Any] = {"timeout": TIMEOUT, "reconnect": None}


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


async def assert_no_tasks_left() -> None:
    left = await other_tasks_after_settling()
    assert not left, f"tasks still running: {left}"


def test_protocol_error_in_reply(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send([json.dumps({"msgid": "s1"}), "{}", "{}"])

    endpoint = server.endpoint(script)

    async def main() -> None:
        session = AsyncClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
        try:
            with stopwatch() as watch, pytest.raises(RemoteProtocolError, match="msgtype"):
                await session.pull()
            assert watch.elapsed < FAST
            assert not session.connected
            assert isinstance(session.last_error, RemoteProtocolError)
            assert session.status.state is SessionState.ERROR
            assert await endpoint.record.wait_gone_async()
            await assert_no_tasks_left()  # the failure alone ends every task
            with pytest.raises(RemoteProtocolError):
                await session.force_roundtrip()
        finally:
            await session.close()
        await assert_no_tasks_left()

    run(main)


def test_unsolicited_close_10001(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        await peer.close(10001, "expected text fragment")

    endpoint = server.endpoint(script)

    async def main() -> None:
        session = await pull_session_async(url=endpoint.http_url, **OPTIONS)
        try:
            async with asyncio.timeout(FAST):
                await session.wait_closed()
            assert not session.connected
            with pytest.raises(ConnectionClosedError) as info:
                await session.force_roundtrip()
            assert info.value.code == 10001
            assert "protocol error" in str(info.value)
            assert info.value is session.last_error
            await assert_no_tasks_left()
        finally:
            await session.close()

    run(main)


def test_error_reply_keeps_the_connection(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(
            message_frames(
                MsgType.ERROR, {"text": "RuntimeError('x')", "traceback": "tb"}, reqid=request.msgid
            )
        )
        await peer.serve()

    endpoint = server.endpoint(script)

    async def main() -> None:
        async with AsyncClientSession(websocket_url=endpoint.ws_url, **OPTIONS) as session:
            with pytest.raises(ServerError) as info:
                await session.pull()
            assert (info.value.text, info.value.traceback) == ("RuntimeError('x')", "tb")
            assert session.connected
            await session.pull()
            assert session.document is not None
        assert not session.connected
        await assert_no_tasks_left()
        assert await endpoint.record.wait_gone_async()

    run(main)


def test_no_ack_times_out(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.wait_client_gone(timeout=TIMEOUT + 5)

    endpoint = server.endpoint(script)

    async def main() -> None:
        session = AsyncClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
        try:
            with stopwatch() as watch, pytest.raises(Timeout):
                await session.connect()
            assert TIMEOUT <= watch.elapsed < TIMEOUT + 1.5
            assert await endpoint.record.wait_gone_async()
            await assert_no_tasks_left()
        finally:
            await session.close()

    run(main)


def test_close_before_ack(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.close_without_status()

    endpoint = server.endpoint(script)

    async def main() -> None:
        session = AsyncClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
        try:
            with pytest.raises(HandshakeRejected, match="token"):
                await session.pull()
            await assert_no_tasks_left()
        finally:
            await session.close()

    run(main)


def test_unknown_model_patch_repulls(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        roundtrip = await peer.expect(MsgType.SERVER_INFO_REQ)
        div = peer.doc.select_one({"name": "div"})
        assert isinstance(div, Div)
        div.text = "server truth"
        event = {"kind": "ModelChanged", "model": {"id": "ghost"}, "attr": "text", "new": "x"}
        await peer.send(message_frames(MsgType.PATCH_DOC, {"events": [event]}))
        await peer.answer(roundtrip)
        await peer.serve()

    endpoint = server.endpoint(script)

    async def main() -> None:
        async with AsyncClientSession(websocket_url=endpoint.ws_url, **OPTIONS) as session:
            await session.pull()
            await session.force_roundtrip()
            # The refused patch started a re-pull in the background; once the server
            # has its request, the next round trip's reply comes after the re-pull's.
            assert await endpoint.record.wait_for_message_async(MsgType.PULL_DOC_REQ, count=2)
            await session.force_roundtrip()
            doc = session.document
            assert doc is not None
            div = doc.select_one({"name": "div"})
            assert isinstance(div, Div)
            assert div.text == "server truth"
            assert session.connected
        await assert_no_tasks_left()

    run(main)


def test_default_reconnect_policy_against_a_server_that_always_misbehaves(
    server: FakeServer,
) -> None:
    """With the default reconnect policy, a server that breaks the protocol on every
    connection: the call still fails with the typed error at once, and close() ends
    the reconnect attempts and every task."""

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send([b"binary header"])

    endpoint = server.endpoint(script)

    async def main() -> None:
        session = AsyncClientSession(websocket_url=endpoint.ws_url, timeout=TIMEOUT)
        try:
            with stopwatch() as watch, pytest.raises(RemoteProtocolError):
                await session.pull()
            assert watch.elapsed < FAST
        finally:
            with stopwatch() as watch:
                await session.close()
            assert watch.elapsed < FAST
        assert not session.connected
        await assert_no_tasks_left()
        assert endpoint.records[0].wait_gone()

    run(main)
