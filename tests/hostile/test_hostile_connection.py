"""Hostile handshakes, closes, sizes and replies, through the synchronous public API.

Each test checks the typed error, that it arrives within a bounded time (never a
hang), and how the connection ends: closed on both sides where it must end, open
and usable where the protocol says it stays open (ERROR replies).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType
from bokeh.models.widgets import Div
from hostile_checks import stopwatch
from hostile_server import FakeServer, Peer, message_frames

from bokeh_nb_client import ClientSession, SessionState, pull_session
from bokeh_nb_client.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    ServerError,
    Timeout,
)
from bokeh_nb_client.protocol import MsgType

TIMEOUT = 2.0
FAST = 1.5
"""An error the server announced must surface well inside the timeout."""
SLOW = TIMEOUT + 1.5
"""A timeout must fire after ``TIMEOUT`` and not much later."""

OPTIONS: dict[str, Any] = {"timeout": TIMEOUT, "reconnect": None}
"""One connection per session: the errors below must end it, as in bokeh.client."""


def session_for(url: str, **extra: Any) -> ClientSession:
    return ClientSession(websocket_url=url, **{**OPTIONS, **extra})


# -- the handshake -----------------------------------------------------------------


@pytest.mark.parametrize(
    "how", ["close 1000", "close 1011", "close without status", "drop the socket"]
)
def test_close_before_ack_is_a_rejected_handshake(server: FakeServer, how: str) -> None:
    async def script(peer: Peer) -> None:
        if how == "close without status":
            await peer.close_without_status()
        elif how == "drop the socket":
            peer.abort()
        else:
            await peer.close(int(how.split()[1]))

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(HandshakeRejected) as info:
            session.pull()
        assert watch.elapsed < FAST
        message = str(info.value)
        assert "token" in message and "auth" in message
        assert info.value.status is None
        assert not session.connected
        assert endpoint.record.wait_gone()
        assert session.async_session.last_error is info.value
        assert session.status.state is SessionState.ERROR
    finally:
        session.close()


def test_no_ack_times_out_and_closes(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.wait_client_gone(timeout=TIMEOUT + 5)

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(Timeout) as info:
            session.pull()
        assert TIMEOUT <= watch.elapsed < SLOW
        assert info.value.seconds == TIMEOUT
        assert "ACK" in info.value.operation
        assert not session.connected
        assert endpoint.record.wait_gone()
        assert endpoint.record.client_close_code is not None
    finally:
        session.close()


def test_server_that_never_answers_the_upgrade_times_out(server: FakeServer) -> None:
    accepted_before = server.silent_accepted
    session = session_for(server.silent_ws_url)
    try:
        with stopwatch() as watch, pytest.raises(Timeout) as info:
            session.pull()
        assert TIMEOUT <= watch.elapsed < SLOW
        assert "connect" in info.value.operation
        assert server.silent_accepted == accepted_before + 1
        assert server.silent_closed.acquire(timeout=5), "the client left the socket open"
        assert not session.connected
    finally:
        session.close()


def test_http_200_with_html_is_a_rejected_handshake(server: FakeServer) -> None:
    session = session_for(server.html_ws_url)
    try:
        with stopwatch() as watch, pytest.raises(HandshakeRejected) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert info.value.status == 200
        assert "200" in str(info.value)
    finally:
        session.close()


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (404, "path"),
        (403, "Origin"),
        # bokeh 3.10's ASGI server refuses a bad token with 403 at the upgrade (issue 10)
        (403, "token"),
        (403, "auth"),
        (500, "500"),
    ],
)
def test_http_error_status_is_a_rejected_handshake(
    server: FakeServer, status: int, hint: str
) -> None:
    session = session_for(server.status_ws_url(status))
    try:
        with stopwatch() as watch, pytest.raises(HandshakeRejected) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert info.value.status == status
        assert hint in str(info.value)
        assert not session.connected
    finally:
        session.close()


def test_upgrade_without_the_bokeh_subprotocol_is_rejected(server: FakeServer) -> None:
    session = session_for(server.noproto_ws_url)
    try:
        with stopwatch() as watch, pytest.raises(HandshakeRejected) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert "subprotocol" in str(info.value)
    finally:
        session.close()


def test_pull_session_closes_what_it_opened_on_failure(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(["{not json"])

    endpoint = server.endpoint(script)
    with stopwatch() as watch, pytest.raises(RemoteProtocolError):
        pull_session(url=endpoint.http_url, **OPTIONS)
    assert watch.elapsed < FAST
    assert endpoint.record.wait_gone()


def test_second_ack_fails_the_call_in_flight(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.ack()
        await peer.expect(MsgType.SERVER_INFO_REQ)
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.ack()

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(RemoteProtocolError, match="second ACK"):
            session.pull()
        assert watch.elapsed < FAST
        assert not session.connected
        assert endpoint.record.wait_gone()
    finally:
        session.close()


def test_message_before_ack_fails_the_connect(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.send(message_frames(MsgType.PATCH_DOC, {"events": []}))

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(RemoteProtocolError, match="before ACK"):
            session.pull()
        assert watch.elapsed < FAST
        assert endpoint.record.wait_gone()
    finally:
        session.close()


# -- close codes sent by the server ------------------------------------------------


CLOSE_MEANINGS = {
    1009: "max-message-size",
    10000: "failed to parse",
    10001: "protocol error",
}


@pytest.mark.parametrize("code", sorted(CLOSE_MEANINGS))
def test_close_code_fails_the_call_in_flight(server: FakeServer, code: int) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.close(code, "bye")

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(ConnectionClosedError) as info:
            session.pull()
        assert watch.elapsed < FAST
        error = info.value
        assert error.code == code
        assert error.reason == "bye"
        assert CLOSE_MEANINGS[code] in str(error)
        assert not session.connected
        assert session.error_code == code
        assert endpoint.record.wait_gone()
        with pytest.raises(ConnectionClosedError) as again:
            session.force_roundtrip()
        assert again.value is error
    finally:
        session.close()


@pytest.mark.parametrize("code", sorted(CLOSE_MEANINGS))
def test_unsolicited_close_code_fails_the_next_call(server: FakeServer, code: int) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        await peer.close(code)

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        session.pull()
        with stopwatch() as watch:
            session.loop_until_closed()
        assert watch.elapsed < FAST
        assert not session.connected
        error = session.async_session.last_error
        assert isinstance(error, ConnectionClosedError)
        assert error.code == code
        assert CLOSE_MEANINGS[code] in str(error)
        assert session.status.last_error == str(error)
        with stopwatch() as watch, pytest.raises(ConnectionClosedError) as info:
            session.force_roundtrip()
        assert watch.elapsed < FAST
        assert info.value is error
        with pytest.raises(ConnectionClosedError):
            session.check_connection_errors()
    finally:
        session.close()


# -- sizes ---------------------------------------------------------------------------


def test_oversized_reply_fragment_is_message_too_big(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(
            message_frames(MsgType.PULL_DOC_REPLY, {"doc": "x" * 5000}, reqid=request.msgid)
        )

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url, max_message_size=1024)
    try:
        with stopwatch() as watch, pytest.raises(MessageTooBig) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert "max_message_size" in str(info.value)
        assert info.value.limit == 1024
        assert not session.connected
        assert endpoint.record.wait_gone()
        assert endpoint.record.client_close_code == 1009
        assert session.document is None
    finally:
        session.close()


def test_oversized_ack_is_message_too_big(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.send([" " * 5000])

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url, max_message_size=1024)
    try:
        with stopwatch() as watch, pytest.raises(MessageTooBig, match="max_message_size"):
            session.pull()
        assert watch.elapsed < FAST
        assert endpoint.record.wait_gone()
    finally:
        session.close()


def test_oversized_unsolicited_patch_fails_the_next_call(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        await peer.send(message_frames(MsgType.PATCH_DOC, {"events": [], "pad": "x" * 50_000}))

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url, max_message_size=20_000)
    try:
        session.pull()
        with stopwatch() as watch:
            session.loop_until_closed()
        assert watch.elapsed < FAST
        with pytest.raises(MessageTooBig, match="max_message_size=20000"):
            session.force_roundtrip()
        assert endpoint.record.wait_gone()
    finally:
        session.close()


def test_announced_buffers_that_never_come_time_out(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        header = {
            "msgid": "s-big",
            "msgtype": "PULL-DOC-REPLY",
            "reqid": request.msgid,
            "num_buffers": 50_000,
        }
        await peer.send([json.dumps(header), "{}", '{"doc": {}}'])

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(Timeout):
            session.pull()
        assert TIMEOUT <= watch.elapsed < SLOW
    finally:
        session.close()
    assert endpoint.record.wait_gone()


# -- ERROR replies: the connection stays open --------------------------------------


def test_error_reply_to_pull_is_a_server_error_and_the_session_survives(
    server: FakeServer,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(
            message_frames(
                MsgType.ERROR,
                {"text": "KeyError('boom')", "traceback": "Traceback (most recent call last): ..."},
                reqid=request.msgid,
            )
        )
        await peer.serve()

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(ServerError) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert info.value.text == "KeyError('boom')"
        assert info.value.traceback is not None and info.value.traceback.startswith("Traceback")
        assert "boom" in str(info.value)
        assert session.connected
        session.force_roundtrip()
        session.pull()
        assert session.document is not None
        assert session.connected
        assert not endpoint.record.gone.is_set()
    finally:
        session.close()
    assert endpoint.record.wait_gone()
    assert endpoint.record.client_close_code == 1000


def test_error_reply_to_a_patch_surfaces_from_the_next_roundtrip(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        patch = await peer.next_message()
        assert patch.msgtype == MsgType.PATCH_DOC
        await peer.send(
            message_frames(
                MsgType.ERROR, {"text": "ValueError('no')", "traceback": None}, reqid=patch.msgid
            )
        )
        await peer.serve()

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        session.pull()
        doc = session.document
        assert doc is not None
        div = doc.select_one({"name": "div"})
        assert isinstance(div, Div)
        div.text = "rejected by the server"
        with stopwatch() as watch, pytest.raises(ServerError) as info:
            session.force_roundtrip()
        assert watch.elapsed < FAST
        assert info.value.text == "ValueError('no')"
        assert info.value.traceback is None
        assert session.connected
        session.force_roundtrip()
    finally:
        session.close()


# -- the error that ended the connection, and when callers see it --------------------


def _bad_reply_script(*, unsolicited: bool) -> Callable[[Peer], Awaitable[None]]:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        if unsolicited:
            await peer.answer(request)
        await peer.send(["{not json", "{}", "{}"])

    return script


def test_call_in_flight_fails_at_once_when_the_server_ignores_our_close(
    server: FakeServer,
) -> None:
    endpoint = server.endpoint(_bad_reply_script(unsolicited=False), answer_close=False)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(RemoteProtocolError):
            session.pull()
        assert watch.elapsed < FAST
    finally:
        endpoint.release()
        session.close()


def test_next_call_raises_the_protocol_error_while_the_close_is_pending(
    server: FakeServer,
) -> None:
    endpoint = server.endpoint(_bad_reply_script(unsolicited=True), answer_close=False)
    session = session_for(endpoint.ws_url)
    try:
        session.pull()
        # The client has seen the bad frame and sent its close frame (1002); the
        # server holds back its answer to it.
        assert endpoint.record.close_seen.wait(5)
        assert endpoint.record.client_close_code == 1002
        with stopwatch() as watch, pytest.raises(RemoteProtocolError):
            session.force_roundtrip()
        assert watch.elapsed < FAST
    finally:
        endpoint.release()
        session.close()


def test_session_ends_cleanly_once_the_server_answers_the_close_late(server: FakeServer) -> None:
    endpoint = server.endpoint(_bad_reply_script(unsolicited=True), answer_close=False)
    session = session_for(endpoint.ws_url)
    try:
        session.pull()
        assert endpoint.record.close_seen.wait(5)
        endpoint.release()
        with stopwatch() as watch:
            session.loop_until_closed()
        assert watch.elapsed < FAST
        assert not session.connected
        assert isinstance(session.async_session.last_error, RemoteProtocolError)
        assert endpoint.record.wait_gone()
    finally:
        session.close()


def test_sync_session_exposes_last_error(server: FakeServer) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.close(10001, "protocol error")

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        session.connect()
        session.loop_until_closed()
        error = session.async_session.last_error
        assert isinstance(error, ConnectionClosedError)
        assert session.last_error is error  # type: ignore[attr-defined]
    finally:
        session.close()


# -- websocket-level garbage ------------------------------------------------------------


WEBSOCKET_GARBAGE: dict[str, tuple[int, bytes]] = {
    "text frame that is not UTF-8": (WSMsgType.TEXT, b"\xff\xfe{"),
    "reserved opcode": (3, b"x"),
    "close payload of one byte": (WSMsgType.CLOSE, b"\x03"),
    "close code 999": (WSMsgType.CLOSE, struct.pack("!H", 999)),
    "close code 1005 on the wire": (WSMsgType.CLOSE, struct.pack("!H", 1005)),
    "close reason not UTF-8": (WSMsgType.CLOSE, struct.pack("!H", 1000) + b"\xff"),
    "ping over 125 bytes": (WSMsgType.PING, b"x" * 200),
}


@pytest.mark.parametrize("name", sorted(WEBSOCKET_GARBAGE))
def test_invalid_websocket_frame_fails_the_call_in_flight(server: FakeServer, name: str) -> None:
    opcode, payload = WEBSOCKET_GARBAGE[name]

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send_frame(payload, opcode)

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(ConnectionClosedError) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert info.value.code in (1002, 1007)
        assert not session.connected
        assert endpoint.record.wait_gone()
    finally:
        session.close()


@pytest.mark.parametrize("how", ["drop the socket", "close 1000"])
def test_connection_lost_during_a_call(server: FakeServer, how: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.expect(MsgType.PULL_DOC_REQ)
        if how == "drop the socket":
            peer.abort()
        else:
            await peer.close(1000)

    endpoint = server.endpoint(script)
    session = session_for(endpoint.ws_url)
    try:
        with stopwatch() as watch, pytest.raises(ConnectionClosed) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert info.value.code == (1006 if how == "drop the socket" else 1000)
        assert not session.connected
        assert endpoint.record.wait_gone()
    finally:
        session.close()
