"""The Transport contract, checked against every transport (trio's check_* idea).

The same suite runs against ``MemoryTransport`` (with its ``MemoryPeer``) and
against ``AiohttpTransport`` talking to an in-process aiohttp websocket server on
127.0.0.1 that selects the ``bokeh`` subprotocol. What ``Connection`` relies on:

* fragments arrive whole, in order, with their kind (text is ``str``, binary is
  ``bytes``; a ``memoryview`` is sent as binary);
* ``bytes_in``/``bytes_out`` count payload bytes;
* a close by the peer surfaces as ``ConnectionClosed`` carrying its code and
  reason (``ConnectionClosedOK`` for 1000/1001), after every fragment sent before
  it, and again on every later ``receive``; a dropped link is code 1006;
* our own ``close`` is idempotent, ends a pending ``receive`` with
  ``ConnectionClosed`` carrying our code, and reaches the peer with code and reason;
* ``send`` after the end raises ``ConnectionClosed``;
* a fragment over ``max_message_size`` is refused by ``send`` with ``MessageTooBig``
  before anything is written, and one received raises ``MessageTooBig`` and ends
  the link with close code 1009.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeAlias

import pytest
from aiohttp import web
from ws_server import AiohttpServerPeer, serve_websocket

from bokeh_nb_client.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    MessageTooBig,
)
from bokeh_nb_client.protocol.wire import Fragment
from bokeh_nb_client.transport.base import Transport
from bokeh_nb_client.transport.memory import memory_pair
from bokeh_nb_client.transport.websocket import AiohttpTransport

WAIT = 5.0


class Peer(Protocol):
    """The far end of a transport, as these tests drive it."""

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None: ...

    async def receive(self) -> Fragment: ...

    async def close(self, code: int = 1000, reason: str = "closed") -> None: ...

    async def drop(self) -> None: ...


PairFactory: TypeAlias = Callable[
    [int], contextlib.AbstractAsyncContextManager[tuple[Transport, Peer]]
]


@contextlib.asynccontextmanager
async def memory(max_message_size: int) -> AsyncIterator[tuple[Transport, Peer]]:
    transport, peer = memory_pair("memory://contract", max_message_size=max_message_size)
    yield transport, peer
    await transport.close()


@contextlib.asynccontextmanager
async def aiohttp_websocket(max_message_size: int) -> AsyncIterator[tuple[Transport, Peer]]:
    peers: asyncio.Queue[AiohttpServerPeer] = asyncio.Queue()
    finished = asyncio.Event()

    async def on_connect(request: web.Request, peer: AiohttpServerPeer) -> None:
        await peers.put(peer)
        await finished.wait()

    async with serve_websocket(on_connect) as url:
        transport: AiohttpTransport | None = None
        try:
            transport = await AiohttpTransport.open(
                url,
                token="not-a-real-token",
                max_message_size=max_message_size,
                timeout=WAIT,
            )
            peer = await asyncio.wait_for(peers.get(), WAIT)
            yield transport, peer
        finally:
            finished.set()
            if transport is not None:
                await transport.close()


TRANSPORTS = {"memory": memory, "aiohttp": aiohttp_websocket}


@pytest.fixture(params=sorted(TRANSPORTS))
def open_pair(request: pytest.FixtureRequest) -> PairFactory:
    factory: PairFactory = TRANSPORTS[request.param]
    return factory


def run(
    open_pair: PairFactory,
    body: Callable[[Transport, Peer], Coroutine[Any, Any, None]],
    *,
    max_message_size: int = 0,
) -> None:
    async def main() -> None:
        async with open_pair(max_message_size) as (transport, peer):
            await asyncio.wait_for(body(transport, peer), WAIT)

    asyncio.run(main())


async def receive_all(
    receive: Callable[[], Coroutine[Any, Any, Fragment]], n: int
) -> list[Fragment]:
    return [await receive() for _ in range(n)]


FRAGMENTS: list[Fragment] = ['{"msgid":"1"}', b"\x00\xff", "", b"", "é ünïcode ✓", b"x" * 70_000]


def test_client_fragments_arrive_in_order_with_their_kind(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        await transport.send([*FRAGMENTS, memoryview(b"view")])
        received = await receive_all(peer.receive, len(FRAGMENTS) + 1)
        assert received == [*FRAGMENTS, b"view"]
        assert [type(f) for f in received] == [type(f) for f in [*FRAGMENTS, b"view"]]
        assert transport.bytes_out == sum(len(f) for f in FRAGMENTS) + 4

    run(open_pair, body)


def test_peer_fragments_arrive_in_order_with_their_kind(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        await peer.send(FRAGMENTS)
        received = await receive_all(transport.receive, len(FRAGMENTS))
        assert received == FRAGMENTS
        # Text is str; binary is bytes, or a memoryview the transport hands over.
        assert [isinstance(f, str) for f in received] == [isinstance(f, str) for f in FRAGMENTS]
        assert all(isinstance(f, str | bytes | memoryview) for f in received)
        assert transport.bytes_in == sum(len(f) for f in FRAGMENTS)

    run(open_pair, body)


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (1000, "normal", ConnectionClosedOK),
        (1001, "", ConnectionClosedOK),
        (1011, "server error", ConnectionClosedError),
        (4321, "custom", ConnectionClosedError),
    ],
)
def test_peer_close_surfaces_code_and_reason_after_earlier_fragments(
    open_pair: PairFactory, code: int, reason: str, kind: type[ConnectionClosed]
) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        await peer.send(["last words", b"\x01"])
        # A websocket close completes when the other side answers it: in a task.
        closing = asyncio.ensure_future(peer.close(code, reason))
        assert await transport.receive() == "last words"
        assert await transport.receive() == b"\x01"
        with pytest.raises(kind) as info:
            await transport.receive()
        assert (info.value.code, info.value.reason) == (code, reason)
        # And again on every later receive.
        with pytest.raises(ConnectionClosed):
            await transport.receive()
        with pytest.raises(ConnectionClosed):
            await transport.send(["after the end"])
        await closing

    run(open_pair, body)


def test_pending_receive_wakes_on_peer_close(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        receiving = asyncio.ensure_future(transport.receive())
        await peer.send(["ping"])
        assert await receiving == "ping"
        receiving = asyncio.ensure_future(transport.receive())
        closing = asyncio.ensure_future(peer.close(4000, "bye"))
        with pytest.raises(ConnectionClosedError) as info:
            await receiving
        assert (info.value.code, info.value.reason) == (4000, "bye")
        await closing

    run(open_pair, body)


def test_dropped_link_is_code_1006(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        receiving = asyncio.ensure_future(transport.receive())
        await peer.drop()
        with pytest.raises(ConnectionClosedError) as info:
            await receiving
        assert info.value.code == 1006
        with pytest.raises(ConnectionClosed):
            await transport.receive()

    run(open_pair, body)


def test_local_close_reaches_peer_and_is_idempotent(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        peer_receiving = asyncio.ensure_future(peer.receive())
        await transport.close(4002, "client done")
        await transport.close(4002, "client done")
        with pytest.raises(ConnectionClosed) as seen:
            await peer_receiving
        assert (seen.value.code, seen.value.reason) == (4002, "client done")
        with pytest.raises(ConnectionClosed):
            await transport.receive()
        with pytest.raises(ConnectionClosed):
            await transport.send(["after close"])

    run(open_pair, body)


def test_local_close_ends_a_pending_receive_with_our_code(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        peer_receiving = asyncio.ensure_future(peer.receive())
        receiving = asyncio.ensure_future(transport.receive())
        await asyncio.sleep(0)  # let receive() start waiting
        await transport.close(1000, "bye")
        with pytest.raises(ConnectionClosed):
            await peer_receiving
        with pytest.raises(ConnectionClosedOK) as info:
            await receiving
        assert info.value.code == 1000

    run(open_pair, body)


def test_oversized_fragment_is_refused_before_anything_is_sent(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        with pytest.raises(MessageTooBig) as info:
            await transport.send(["small", "x" * 1025])
        assert info.value.limit == 1024
        assert info.value.size == 1025
        await transport.send(["next"])
        assert await peer.receive() == "next"
        await transport.send([b"y" * 1024])  # exactly the limit is fine
        assert await peer.receive() == b"y" * 1024

    run(open_pair, body, max_message_size=1024)


def test_oversized_received_fragment_raises_message_too_big_and_ends(
    open_pair: PairFactory,
) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        await peer.send([b"z" * 2048])
        peer_receiving = asyncio.ensure_future(peer.receive())
        with pytest.raises(MessageTooBig) as info:
            await transport.receive()
        assert info.value.limit == 1024
        with pytest.raises(ConnectionClosed):
            await transport.receive()
        with pytest.raises(ConnectionClosed) as seen:
            await peer_receiving
        assert seen.value.code == 1009

    run(open_pair, body, max_message_size=1024)


def test_url_is_reported(open_pair: PairFactory) -> None:
    async def body(transport: Transport, peer: Peer) -> None:
        assert transport.url.startswith(("memory://", "ws://127.0.0.1:"))

    run(open_pair, body)
