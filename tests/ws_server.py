"""An in-process aiohttp websocket server on 127.0.0.1, for the transport and fake-server tests.

* :class:`AiohttpServerPeer` is the server side of one websocket, with the
  ``send``/``receive``/``close``/``drop`` surface the tests drive.
* :func:`serve_websocket` serves ``path`` with the ``bokeh`` subprotocol on the
  running loop and hands every connection to a callback; it yields the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestServer

from bokeh_nb_client.protocol.wire import Fragment
from bokeh_nb_client.transport.websocket import closed_error

__all__ = ["AiohttpServerPeer", "serve_websocket"]


class AiohttpServerPeer:
    """The server side of a real aiohttp websocket, with the ``Peer`` surface."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self._close_called = False
        self._close_done = asyncio.Event()

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None:
        try:
            for fragment in fragments:
                if isinstance(fragment, str):
                    await self.ws.send_str(fragment)
                else:
                    await self.ws.send_bytes(bytes(fragment))
        except (ConnectionError, RuntimeError) as exc:
            raise closed_error(self.ws.close_code or 1006, "") from exc

    async def receive(self) -> Fragment:
        msg = await self.ws.receive()
        if msg.type is WSMsgType.TEXT:
            text: str = msg.data
            return text
        if msg.type is WSMsgType.BINARY:
            data: bytes = msg.data
            return data
        if msg.type is WSMsgType.CLOSE:
            raise closed_error(int(msg.data), msg.extra or "")
        raise closed_error(self.ws.close_code or 1006, "")

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        self._close_called = True
        try:
            await self.ws.close(code=code, message=reason.encode())
        finally:
            self._close_done.set()

    async def finish(self, code: int) -> None:
        """Close with ``code``, unless :meth:`close` was called: then wait for that close.

        A test may call :meth:`close` from another task while the connection's own
        task is in ``receive()``. Before aiohttp 3.10.4 ``ws.closed`` stays False
        until that close has completed, so closing here as well would race it and
        could send this code instead of the test's.
        """
        if self._close_called:
            await self._close_done.wait()
        elif not self.ws.closed:
            await self.ws.close(code=code)

    async def drop(self) -> None:
        """Cut the TCP connection without a close frame."""
        transport = self.request.transport
        assert transport is not None
        transport.abort()


@contextlib.asynccontextmanager
async def serve_websocket(
    on_connect: Callable[[web.Request, AiohttpServerPeer], Awaitable[None]],
    path: str = "/app/ws",
    close_code: int = WSCloseCode.OK,
) -> AsyncIterator[str]:
    """Serve ws://127.0.0.1:PORT``path`` on the running loop; yield the URL.

    Each connection is accepted with the ``bokeh`` subprotocol and no size limit,
    handed to ``on_connect``, and closed with ``close_code`` when that returns
    (unless it is closed already).
    """

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("bokeh",), max_msg_size=0)
        await ws.prepare(request)
        peer = AiohttpServerPeer(request, ws)
        await on_connect(request, peer)
        await peer.finish(close_code)
        return ws

    app = web.Application()
    app.router.add_get(path, handler)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield f"ws://127.0.0.1:{test_server.port}{path}"
    finally:
        await test_server.close()
