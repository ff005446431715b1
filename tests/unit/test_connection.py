"""Connection, the asyncio driver, over the in-memory transport pair.

Each test runs its own loop with ``asyncio.run`` and plays the server by hand
through a ``ServerEnd`` on the ``MemoryPeer``, so every ordering is deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from fakes import ServerEnd

from bokeh_nb_client.connection import Connection
from bokeh_nb_client.exceptions import (
    BokehClientError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    ServerError,
    Timeout,
)
from bokeh_nb_client.protocol import MsgType, WireMessage, counter_ids
from bokeh_nb_client.transport.memory import MemoryPeer, MemoryTransport, memory_pair

T = TypeVar("T")

SHORT = 0.05
"""A timeout meant to expire (seconds)."""
LONG = 5.0
"""A timeout meant never to expire in a passing test."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh loop; fail if it leaves any task behind."""

    async def checked() -> T:
        result = await asyncio.wait_for(main(), LONG * 4)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == [], f"tasks leaked: {leftover}"
        return result

    return asyncio.run(checked(), debug=True)


async def settle() -> None:
    """Let every ready callback run (the memory pair never waits on real I/O)."""
    for _ in range(20):
        await asyncio.sleep(0)


@dataclass
class Client:
    """A Connection, what its callbacks saw, and the server end of its pair."""

    conn: Connection
    transport: MemoryTransport
    peer: MemoryPeer
    server: ServerEnd
    patches: list[WireMessage] = field(default_factory=list)
    closed: list[BokehClientError] = field(default_factory=list)


async def connect(
    *,
    max_message_size: int = 0,
    buffer_limit: int | None = None,
    on_patch: Callable[[WireMessage], None] | None = None,
) -> Client:
    transport, peer = memory_pair(max_message_size=max_message_size, buffer_limit=buffer_limit)
    server = ServerEnd(peer)
    patches: list[WireMessage] = []
    closed: list[BokehClientError] = []
    opening = start(
        Connection.open(
            transport,
            on_patch=on_patch or patches.append,
            on_closed=closed.append,
            ack_timeout=LONG,
            id_factory=counter_ids("c"),
        )
    )
    await server.ack()
    conn = await opening
    return Client(conn, transport, peer, server, patches, closed)


async def expect_request(client: Client, msgtype: MsgType) -> WireMessage:
    request = await asyncio.wait_for(client.server.receive_message(), LONG)
    assert request.msgtype == msgtype
    return request


def start(coro: Awaitable[T]) -> asyncio.Task[T]:
    async def wrapper() -> T:
        return await coro

    return asyncio.get_running_loop().create_task(wrapper())


# -- opening -----------------------------------------------------------------------------


def test_open_waits_for_ack_and_sends_nothing_before_it() -> None:
    async def main() -> None:
        transport, peer = memory_pair()
        opening = start(Connection.open(transport, on_patch=lambda m: None, ack_timeout=LONG))
        await settle()
        assert not opening.done()
        assert peer.unread() == []
        await ServerEnd(peer).ack()
        conn = await asyncio.wait_for(opening, LONG)
        assert not conn.closed
        assert conn.url == "memory://test"
        await conn.close()

    run(main)


def test_close_before_ack_is_handshake_rejected() -> None:
    async def main() -> None:
        transport, peer = memory_pair()
        closed: list[BokehClientError] = []
        opening = start(
            Connection.open(
                transport, on_patch=lambda m: None, on_closed=closed.append, ack_timeout=LONG
            )
        )
        await settle()
        await peer.close(1011, "token rejected")
        with pytest.raises(HandshakeRejected) as info:
            await opening
        assert info.value.status is None
        assert info.value.url == "memory://test"
        cause = info.value.__cause__
        assert isinstance(cause, ConnectionClosed)
        assert (cause.code, cause.reason) == (1011, "token rejected")
        assert closed == [info.value]

    run(main)


def test_drop_before_ack_is_handshake_rejected() -> None:
    async def main() -> None:
        transport, peer = memory_pair()
        opening = start(Connection.open(transport, on_patch=lambda m: None, ack_timeout=LONG))
        await settle()
        await peer.drop()
        with pytest.raises(HandshakeRejected) as info:
            await opening
        assert isinstance(info.value.__cause__, ConnectionClosedError)
        assert info.value.__cause__.code == 1006

    run(main)


def test_first_message_not_ack_is_remote_protocol_error_and_closes() -> None:
    async def main() -> None:
        transport, peer = memory_pair()
        server = ServerEnd(peer)
        await server.send_message(MsgType.OK, reqid="c1")
        with pytest.raises(RemoteProtocolError, match="before ACK"):
            await Connection.open(transport, on_patch=lambda m: None, ack_timeout=LONG)
        with pytest.raises(ConnectionClosed) as info:
            await peer.receive()
        assert info.value.code == 1002

    run(main)


def test_no_ack_in_time_is_timeout_and_closes() -> None:
    async def main() -> None:
        transport, peer = memory_pair()
        with pytest.raises(Timeout) as info:
            await Connection.open(transport, on_patch=lambda m: None, ack_timeout=SHORT)
        assert isinstance(info.value, TimeoutError)
        assert "ACK" in info.value.operation
        assert info.value.seconds == SHORT
        with pytest.raises(ConnectionClosed):
            await peer.receive()

    run(main)


# -- requests and replies ----------------------------------------------------------------


def test_replies_are_matched_to_requests_by_reqid() -> None:
    async def main() -> None:
        client = await connect()
        info = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        pull = start(client.conn.request(MsgType.PULL_DOC_REQ, {}, timeout=LONG))
        info_req = await expect_request(client, MsgType.SERVER_INFO_REQ)
        pull_req = await expect_request(client, MsgType.PULL_DOC_REQ)
        assert info_req.msgid != pull_req.msgid
        # Answer in the opposite order.
        await client.server.reply(pull_req, MsgType.PULL_DOC_REPLY, {"doc": {"title": "t"}})
        info_content = {"version_info": {"bokeh": "3.9.2", "server": "3.9.2"}}
        await client.server.reply(info_req, MsgType.SERVER_INFO_REPLY, info_content)
        pull_reply = await pull
        info_reply = await info
        assert pull_reply.reqid == pull_req.msgid
        assert pull_reply.content == {"doc": {"title": "t"}}
        assert info_reply.reqid == info_req.msgid
        assert info_reply.content == info_content
        assert client.conn.stats.messages_out == 2
        assert client.conn.stats.messages_in == 3  # ACK and two replies
        assert client.conn.stats.last_rtt is not None
        assert client.conn.bytes_in == client.transport.bytes_in > 0
        assert client.conn.bytes_out == client.transport.bytes_out > 0
        await client.conn.close()

    run(main)


def test_request_carries_buffers() -> None:
    async def main() -> None:
        client = await connect()
        view = memoryview(bytearray(b"\x00\x01\x02\x03"))
        sending = start(
            client.conn.request(
                MsgType.PATCH_DOC, {"events": []}, timeout=LONG, buffers=[("b1", view)]
            )
        )
        request = await expect_request(client, MsgType.PATCH_DOC)
        assert request.buffers == (("b1", b"\x00\x01\x02\x03"),)
        await client.server.reply(request, MsgType.OK)
        await sending
        await client.conn.close()

    run(main)


def test_error_reply_is_server_error_and_connection_stays_open() -> None:
    async def main() -> None:
        client = await connect()
        failing = start(client.conn.request(MsgType.PATCH_DOC, {"events": []}, timeout=LONG))
        request = await expect_request(client, MsgType.PATCH_DOC)
        await client.server.error(request, "UnknownReferenceError('nope')", "Traceback: ...")
        with pytest.raises(ServerError) as info:
            await failing
        assert isinstance(info.value, RuntimeError)
        assert info.value.text == "UnknownReferenceError('nope')"
        assert info.value.traceback == "Traceback: ..."
        assert info.value.reqid == request.msgid
        assert "PATCH-DOC" in str(info.value)
        # Still usable.
        ok = start(client.conn.request(MsgType.PATCH_DOC, {"events": []}, timeout=LONG))
        await client.server.reply(await expect_request(client, MsgType.PATCH_DOC), MsgType.OK)
        assert (await ok).msgtype == "OK"
        assert not client.conn.closed
        await client.conn.close()

    run(main)


def test_timeout_raises_timeout_and_late_reply_is_dropped() -> None:
    async def main() -> None:
        client = await connect()
        with pytest.raises(Timeout) as info:
            await client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=SHORT)
        assert isinstance(info.value, TimeoutError)
        assert info.value.operation == "SERVER-INFO-REQ"
        assert info.value.seconds == SHORT
        late = await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.server.reply(late, MsgType.SERVER_INFO_REPLY, {"late": True})
        # The connection survives the late reply and keeps working.
        next_request = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        request = await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.server.reply(request, MsgType.SERVER_INFO_REPLY, {"late": False})
        assert (await next_request).content == {"late": False}
        assert not client.conn.closed
        assert client.patches == []
        await client.conn.close()

    run(main)


def test_send_returns_the_future_of_the_reply() -> None:
    async def main() -> None:
        client = await connect()
        future = await client.conn.send(MsgType.SERVER_INFO_REQ, {})
        assert not future.done()
        request = await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.server.reply(request, MsgType.SERVER_INFO_REPLY, {})
        reply = await asyncio.wait_for(future, LONG)
        assert reply.reqid == request.msgid
        await client.conn.close()

    run(main)


# -- the end of a connection -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (1000, "bye", ConnectionClosedOK),
        (1001, "", ConnectionClosedOK),
        (4001, "going away", ConnectionClosedError),
        (10001, "protocol", ConnectionClosedError),
    ],
)
def test_peer_close_fails_pending_requests_with_code_and_reason(
    code: int, reason: str, kind: type[ConnectionClosed]
) -> None:
    async def main() -> None:
        client = await connect()
        first = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        second = start(client.conn.request(MsgType.PULL_DOC_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await expect_request(client, MsgType.PULL_DOC_REQ)
        await client.peer.close(code, reason)
        for pending in (first, second):
            with pytest.raises(kind) as info:
                await pending
            assert (info.value.code, info.value.reason) == (code, reason)
        await client.conn.wait_closed()
        assert client.conn.closed
        assert isinstance(client.conn.failure, kind)
        assert client.closed == [client.conn.failure]
        # Sending now raises the same error at once.
        with pytest.raises(kind):
            await client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG)
        await client.conn.close()
        assert len(client.closed) == 1

    run(main)


def test_dropped_connection_fails_pending_requests_with_1006() -> None:
    async def main() -> None:
        client = await connect()
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.peer.drop()
        with pytest.raises(ConnectionClosedError) as info:
            await pending
        assert info.value.code == 1006
        assert "dropped" in str(info.value)
        await client.conn.close()
        assert client.closed == [info.value]

    run(main)


def test_local_close_fails_pending_requests_and_calls_on_closed_once() -> None:
    async def main() -> None:
        client = await connect()
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.conn.close(1000, "done")
        with pytest.raises(ConnectionClosed) as info:
            await pending
        assert info.value.code == 1000
        assert client.closed == [info.value]
        with pytest.raises(ConnectionClosed) as seen:
            await client.peer.receive()
        assert (seen.value.code, seen.value.reason) == (1000, "done")
        await client.conn.close()  # idempotent
        await client.peer.close(1000, "late")
        assert len(client.closed) == 1

    run(main)


def test_garbage_fragment_is_remote_protocol_error_and_closes() -> None:
    async def main() -> None:
        client = await connect()
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.peer.send([b"\x00 binary where a header is due"])
        with pytest.raises(RemoteProtocolError) as info:
            await pending
        await client.conn.wait_closed()
        assert client.conn.failure is info.value
        assert client.closed == [info.value]
        with pytest.raises(ConnectionClosed) as seen:
            await client.peer.receive()
        assert seen.value.code == 1002
        await client.conn.close()

    run(main)


def test_unsolicited_reply_is_remote_protocol_error() -> None:
    async def main() -> None:
        client = await connect()
        await client.server.send_message(MsgType.OK, reqid="nobody-asked")
        await client.conn.wait_closed()
        assert isinstance(client.conn.failure, RemoteProtocolError)
        assert "unsolicited" in str(client.conn.failure)
        await client.conn.close()

    run(main)


# -- patches -----------------------------------------------------------------------------


def test_patches_are_delivered_in_order_before_a_later_reply_resumes_its_requester() -> None:
    async def main() -> None:
        client = await connect()
        seen_at_resume: list[Any] = []

        async def requester() -> None:
            await client.conn.request(MsgType.PATCH_DOC, {"events": []}, timeout=LONG)
            seen_at_resume.extend(p.content["n"] for p in client.patches)

        task = start(requester())
        request = await expect_request(client, MsgType.PATCH_DOC)
        for n in range(5):
            await client.server.send_message(MsgType.PATCH_DOC, {"n": n})
        await client.server.reply(request, MsgType.OK)
        await task
        assert seen_at_resume == [0, 1, 2, 3, 4]
        await client.conn.close()

    run(main)


def test_patch_with_buffers_reaches_on_patch() -> None:
    async def main() -> None:
        client = await connect()
        await client.server.send_message(
            MsgType.PATCH_DOC, {"events": ["x"]}, buffers=[("b", b"\xff\x00")]
        )
        # A round trip proves the patch was dispatched (it came first).
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await client.server.reply(
            await expect_request(client, MsgType.SERVER_INFO_REQ), MsgType.SERVER_INFO_REPLY
        )
        await pending
        [patch] = client.patches
        assert patch.content == {"events": ["x"]}
        assert patch.buffers == (("b", b"\xff\x00"),)
        await client.conn.close()

    run(main)


def test_on_patch_failure_ends_the_connection_and_close_does_not_raise() -> None:
    async def main() -> None:
        def explode(message: WireMessage) -> None:
            raise ValueError("broken handler")

        client = await connect(on_patch=explode)
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.server.send_message(MsgType.PATCH_DOC, {"events": []})
        with pytest.raises(BokehClientError) as info:
            await pending
        assert isinstance(info.value.__cause__, ValueError)
        await client.conn.close()  # the reader's own error is not re-raised here
        assert client.closed == [info.value]

    run(main)


# -- cancellation and size limits --------------------------------------------------------


def test_cancelled_request_is_abandoned_and_its_late_reply_dropped() -> None:
    async def main() -> None:
        client = await connect()
        task = start(client.conn.request(MsgType.PULL_DOC_REQ, {}, timeout=LONG))
        request = await expect_request(client, MsgType.PULL_DOC_REQ)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.server.reply(request, MsgType.PULL_DOC_REPLY, {"doc": {}})
        again = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await client.server.reply(
            await expect_request(client, MsgType.SERVER_INFO_REQ), MsgType.SERVER_INFO_REPLY
        )
        await again
        assert not client.conn.closed
        await client.conn.close()

    run(main)


def test_request_cancelled_mid_write_ends_the_connection_cleanly() -> None:
    async def main() -> None:
        # One unread fragment fills the pipe: the request's second fragment waits.
        client = await connect(buffer_limit=1)
        task = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await settle()
        assert len(client.peer.unread()) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.conn.wait_closed()
        assert isinstance(client.conn.failure, ConnectionClosed)
        assert client.closed == [client.conn.failure]
        await client.conn.close()  # must not raise the reader's cancellation

    run(main)


def test_fragment_over_the_limit_is_refused_and_the_connection_stays_open() -> None:
    async def main() -> None:
        client = await connect(max_message_size=200)
        with pytest.raises(MessageTooBig) as info:
            await client.conn.request(MsgType.PATCH_DOC, {"x": "y" * 500}, timeout=LONG)
        assert info.value.limit == 200
        assert info.value.size is not None
        assert info.value.size > 200
        assert client.peer.unread() == []
        ok = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await client.server.reply(
            await expect_request(client, MsgType.SERVER_INFO_REQ), MsgType.SERVER_INFO_REPLY
        )
        await ok
        await client.conn.close()

    run(main)


def test_received_fragment_over_the_limit_ends_the_connection() -> None:
    async def main() -> None:
        client = await connect(max_message_size=200)
        pending = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await expect_request(client, MsgType.SERVER_INFO_REQ)
        await client.server.send_message(MsgType.PATCH_DOC, {"x": "y" * 500})
        with pytest.raises(MessageTooBig):
            await pending
        await client.conn.wait_closed()
        assert isinstance(client.conn.failure, MessageTooBig)
        with pytest.raises(ConnectionClosed) as seen:
            await client.peer.receive()
        assert seen.value.code == 1009
        await client.conn.close()

    run(main)


# -- one record per outstanding request (issue 11 item 1) ---------------------------------


def test_cancelled_send_drops_its_late_reply_and_never_calls_its_handler() -> None:
    async def main() -> None:
        client = await connect()
        handled: list[WireMessage] = []
        future = await client.conn.send(MsgType.PULL_DOC_REQ, {}, on_reply=handled.append)
        request = await expect_request(client, MsgType.PULL_DOC_REQ)
        future.cancel()  # the requester gave up (timeout, interrupt, cancelled await)
        await client.server.reply(request, MsgType.PULL_DOC_REPLY, {"doc": {}})
        # The connection goes on; the late reply had no effect.
        after = start(client.conn.request(MsgType.SERVER_INFO_REQ, {}, timeout=LONG))
        await client.server.reply(
            await expect_request(client, MsgType.SERVER_INFO_REQ), MsgType.SERVER_INFO_REPLY
        )
        await after
        assert handled == []
        assert client.patches == []
        assert not client.conn.closed
        await client.conn.close()

    run(main)


def test_error_reply_removes_the_reply_handler_and_calls_on_answered() -> None:
    async def main() -> None:
        client = await connect()
        handled: list[WireMessage] = []
        answered: list[str] = []
        future = await client.conn.send(
            MsgType.PULL_DOC_REQ,
            {},
            on_reply=handled.append,
            on_answered=lambda: answered.append("answered"),
        )
        request = await expect_request(client, MsgType.PULL_DOC_REQ)
        await client.server.error(request, "no", "Traceback: ...")
        with pytest.raises(ServerError):
            await future
        assert handled == []
        assert answered == ["answered"]
        await client.conn.close()

    run(main)


def test_on_answered_runs_before_a_patch_buffered_right_behind_the_reply() -> None:
    async def main() -> None:
        order: list[str] = []
        client = await connect(on_patch=lambda message: order.append("patch"))
        future = await client.conn.send(
            MsgType.PATCH_DOC, {"events": []}, on_answered=lambda: order.append("answered")
        )
        future.add_done_callback(lambda _: order.append("future done"))
        request = await expect_request(client, MsgType.PATCH_DOC)
        await client.server.reply(request, MsgType.OK)
        await client.server.send_message(MsgType.PATCH_DOC, {"events": []})
        await asyncio.wait_for(future, LONG)
        while "patch" not in order:
            await settle()
        # The outbox releases pending writes in on_answered: in wire order, before
        # the patch behind the OK (a done-callback may run only after it).
        assert order.index("answered") < order.index("patch")
        await client.conn.close()

    run(main)
