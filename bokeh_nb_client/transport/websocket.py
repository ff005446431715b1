"""The websocket transport on aiohttp: the only module that imports aiohttp.

It opens the socket with exactly the two subprotocols ``["bokeh", token]`` and no
Origin header (PROTOCOL.md §1.3, §1.7), sets aiohttp's per-message limit from
``max_message_size`` (aiohttp's own default of 4 MiB would break large pulls,
§1.9), tunes the socket for request/reply latency, and translates every aiohttp
error and CLOSE/ERROR frame into this package's exceptions.

Latency: a Bokeh message is three or more websocket messages. With Nagle's
algorithm on either end, the second small write waits for the ACK of the first,
and the peer delays that ACK by up to 40 ms: ``bokeh.client`` pays two such stalls
per request (about 88 ms on loopback). We set ``TCP_NODELAY`` so our own fragments
leave at once, and re-arm ``TCP_QUICKACK`` (Linux) after every read so that we
acknowledge the server's first fragment immediately, which releases the rest of
its reply from the server's Nagle buffer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl as ssl_module
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import aiohttp

from ..exceptions import (
    ConnectError,
    ConnectionClosed,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    Timeout,
)
from ..protocol.urls import redact_userinfo
from ..protocol.wire import Fragment
from .base import closed_error
from .frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, FrameDecoder, close_code

__all__ = ["AiohttpTransport", "check_fragment_sizes", "closed_error"]

log = logging.getLogger(__name__)

_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class AiohttpTransport:
    """One open Bokeh websocket. Create with :meth:`open`.

    Not safe for concurrent senders: the caller (``Connection``) serializes whole
    messages, because fragments of two messages must never interleave (§2).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        url: str,
        max_message_size: int,
    ) -> None:
        self._http = http
        self._ws = ws
        self._url = url
        self._max_message_size = max_message_size
        self._sock: Any = ws.get_extra_info("socket")
        self._tune_socket()
        self.buffered_reads = _read_into_buffers(ws)
        self.bytes_in = 0
        self.bytes_out = 0
        self._local_close: tuple[int, str] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        token: str,
        max_message_size: int,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
    ) -> AiohttpTransport:
        """Open the websocket at ``url`` (ws:// or wss://) and return the transport.

        Raises:
            ConnectError: the socket could not be opened (refused, DNS, TLS).
            HandshakeRejected: the server answered the upgrade with an HTTP status,
                or did not select the ``bokeh`` subprotocol.
            Timeout: the handshake took longer than ``timeout`` seconds.
        """
        shown = redact_userinfo(url)  # what messages may show: no credentials
        http = aiohttp.ClientSession(
            cookies=dict(cookies) if cookies else None,
            ws_response_class=_response_class(max_message_size),
        )
        failure: BaseException | None = None
        try:
            ws = await asyncio.wait_for(
                http.ws_connect(
                    url,
                    protocols=("bokeh", token),
                    max_msg_size=max_message_size,
                    autoping=True,
                    headers=dict(headers) if headers else None,
                    ssl=True if ssl is None else ssl,
                ),
                timeout,
            )
        except BaseException as exc:
            await http.close()
            failure = _translate_connect_error(exc, shown, timeout)
            if failure is exc:
                raise
        if failure is not None:
            # Raised outside the handler, so neither chained nor in __context__:
            # aiohttp's errors carry the request headers (cookies, the token in
            # Sec-WebSocket-Protocol) in their repr. Our message keeps the cause.
            raise failure
        if ws.protocol != "bokeh":
            await ws.close()
            await http.close()
            raise HandshakeRejected(
                f"{shown} accepted the websocket but did not select the 'bokeh' "
                "subprotocol: this is not a Bokeh server endpoint",
                url=shown,
            )
        return cls(http, ws, shown, max_message_size)

    def _tune_socket(self) -> None:
        if self._sock is None:
            return
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # not TCP (e.g. a unix socket): nothing to tune
            log.debug("could not set TCP_NODELAY: %s", exc)
            self._sock = None
            return
        self._quickack()

    def _quickack(self) -> None:
        if self._sock is not None and _TCP_QUICKACK is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                self._sock = None

    @property
    def url(self) -> str:
        """The websocket URL."""
        return self._url

    @property
    def close_code(self) -> int | None:
        """The close code once closed, else None."""
        return self._ws.close_code

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None:
        """Write all fragments of one Bokeh message, in order.

        Raises:
            MessageTooBig: a fragment exceeds ``max_message_size`` (nothing is sent).
            ConnectionClosed: the socket is closed or closing.
        """
        check_fragment_sizes(fragments, self._max_message_size)
        ws = self._ws
        try:
            for fragment in fragments:
                if isinstance(fragment, str):
                    await ws.send_str(fragment)
                else:
                    await ws.send_bytes(fragment)  # type: ignore[arg-type]
                self.bytes_out += len(fragment)
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            raise self._closed_after_error() from exc

    async def receive(self) -> Fragment:
        """Return the next text (str) or binary (bytes or memoryview) websocket message.

        Pings are answered by aiohttp. Raises ``ConnectionClosed`` (with the close
        code and reason) when the socket closes, and ``MessageTooBig`` when the
        server sent a message over ``max_message_size``.
        """
        msg = await self._ws.receive()
        self._quickack()
        kind = msg.type
        if kind is aiohttp.WSMsgType.TEXT:
            data: str = msg.data
            self.bytes_in += len(data)
            return data
        if kind is aiohttp.WSMsgType.BINARY:
            payload: bytes | memoryview = msg.data  # memoryview: a large payload, handed over
            self.bytes_in += len(payload)
            return payload
        if kind is aiohttp.WSMsgType.ERROR:
            exc = msg.data
            if isinstance(exc, aiohttp.WebSocketError) and exc.code == 1009:
                raise MessageTooBig(
                    f"the server sent a message larger than max_message_size="
                    f"{self._max_message_size}; open the session with a larger "
                    "max_message_size",
                    limit=self._max_message_size,
                ) from exc
            raise self._closed_after_error() from exc
        if kind is aiohttp.WSMsgType.CLOSE:
            code = int(msg.data) if msg.data else 1005
            reason = msg.extra or ""
            raise closed_error(code, reason)
        # CLOSING / CLOSED: the socket is gone.
        raise self._closed_after_error()

    def _closed_after_error(self) -> ConnectionClosed:
        if self._local_close is not None:
            return closed_error(*self._local_close)  # we closed it ourselves
        code = self._ws.close_code
        return closed_error(1006 if code is None else code, "")

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        """Send a close frame (if still open) and release the HTTP session.

        Safe to call more than once.
        """
        if self._local_close is None:
            self._local_close = (code, reason)
        try:
            if not self._ws.closed:
                await self._ws.close(code=code, message=reason.encode("utf-8")[:120])
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
            log.debug("error while closing %s: %s", self._url, exc)
        finally:
            await self._http.close()


def check_fragment_sizes(fragments: Sequence[Fragment | memoryview], limit: int) -> None:
    """Raise MessageTooBig if a fragment exceeds ``limit`` bytes (0: no limit)."""
    if limit:
        for fragment in fragments:
            size = len(fragment)
            if size > limit:
                raise MessageTooBig(
                    f"a message fragment of {size} bytes exceeds max_message_size="
                    f"{limit}; raise max_message_size (and the server's "
                    "--websocket-max-message-size) or send less at once",
                    limit=limit,
                    size=size,
                )


def _translate_connect_error(exc: BaseException, url: str, timeout: float) -> BaseException:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        status = exc.status
        if status == 404:
            text = (
                f"HTTP 404 from {url}: no Bokeh app at this path (check the app path "
                "and the server's --prefix)"
            )
        elif status == 403:
            # bokeh serve (tornado) answers 403 for an Origin it does not allow;
            # bokeh 3.10's ASGI server (BokehASGI) refuses every websocket before
            # accepting it, so its ASGI server answers 403 for a rejected token,
            # Origin, auth module or app path alike.
            text = (
                f"HTTP 403 from {url}: the server refused the connection: the session "
                "token was rejected (wrong secret key or unsigned id on a signed "
                "server, expired token, clock skew), the Origin is not allowed by "
                "--allow-websocket-origin, or an auth module refused the request "
                "(an ASGI server also answers 403 for an unknown app path); the "
                "server's log says which"
            )
        elif status == 200:
            text = f"{url} answered HTTP 200 instead of upgrading: not a Bokeh websocket URL"
        else:
            text = f"HTTP {status} from {url} on the websocket upgrade: {exc.message}"
        return HandshakeRejected(text, url=url, status=status)
    if isinstance(exc, asyncio.TimeoutError):
        return Timeout(f"connect to {url}", timeout)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return ConnectError(f"TLS failure connecting to {url}: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror):
        # DNS: no server to ask about; say which name did not resolve.
        return ConnectError(
            f"cannot connect to {url}: the host name {exc.host!r} could not be resolved "
            f"({exc.os_error.strerror or exc.os_error}); check the URL",
            url=url,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(
            f"cannot connect to {url}: {exc.strerror or exc} (is `bokeh serve` running?)",
            url=url,
        )
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return ValueError(f"invalid websocket URL {url!r}: {exc}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ConnectError(f"cannot connect to {url}: {exc}", url=url)
    return exc


# -- the receive path ---------------------------------------------------------------
#
# aiohttp parses incoming frames with its WebSocketReader, which keeps every socket
# read of a large frame as a bytes slice and joins them at the end (two copies and
# a transient second buffer per Bokeh array). We give the connection our own
# parser instead (frames.FrameDecoder), which feeds aiohttp's message queue with
# the same WSMessage values, so ``ws.receive()``, ping/pong and close handling stay
# aiohttp's. On a plain TCP socket the transport is then switched to a
# BufferedProtocol so the kernel writes large payloads straight into their final
# buffer. See bench/README.md, "Receive path".

_KINDS = {
    OP_TEXT: aiohttp.WSMsgType.TEXT,
    OP_BINARY: aiohttp.WSMsgType.BINARY,
    OP_CLOSE: aiohttp.WSMsgType.CLOSE,
    OP_PING: aiohttp.WSMsgType.PING,
    OP_PONG: aiohttp.WSMsgType.PONG,
}


class _FrameParser:
    """What aiohttp's ResponseHandler expects of a websocket payload parser."""

    __slots__ = ("decoder", "queue")

    def __init__(self, queue: Any, max_msg_size: int) -> None:
        self.queue = queue
        self.decoder = FrameDecoder(self._deliver, max_msg_size)

    def _deliver(self, opcode: int, data: Any, extra: str, size: int) -> None:
        self.queue.feed_data(aiohttp.WSMessage(_KINDS[opcode], data, extra), size)

    def fail(self, exc: RemoteProtocolError) -> None:
        """Hand a framing error to the reader, as aiohttp's own parser does."""
        self.queue.set_exception(aiohttp.WebSocketError(close_code(exc), str(exc)))

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        if self.decoder.failed:
            return True, b""
        try:
            self.decoder.feed(data)
        except RemoteProtocolError as exc:
            self.fail(exc)
            return True, b""
        return False, b""

    def feed_eof(self) -> None:
        self.queue.feed_eof()


class _FrameReaderResponse(aiohttp.ClientWebSocketResponse):
    """aiohttp's websocket response, with our parser in place of WebSocketReader.

    ``ws_connect`` assigns its reader to ``_parser`` and then hands ``_parser`` to
    the connection; the property swaps ours in at that moment, before any frame
    has been parsed.
    """

    frame_limit: ClassVar[int] = 0

    @property  # type: ignore[override]
    def _parser(self) -> _FrameParser | None:
        parser: _FrameParser | None = self.__dict__.get("_nbc_parser")
        return parser

    @_parser.setter
    def _parser(self, value: object) -> None:
        if value is not None and not isinstance(value, _FrameParser):
            value = _FrameParser(self._reader, self.frame_limit)
        self.__dict__["_nbc_parser"] = value


@functools.lru_cache(maxsize=32)
def _response_class(max_msg_size: int) -> type[aiohttp.ClientWebSocketResponse]:
    return type("FrameReaderResponse", (_FrameReaderResponse,), {"frame_limit": max_msg_size})


class _BufferedReader(asyncio.BufferedProtocol):
    """Stands in for aiohttp's protocol on the transport; reads go into our buffers.

    Every other callback is forwarded to aiohttp's protocol unchanged.
    """

    def __init__(self, inner: Any, parser: _FrameParser) -> None:
        self._inner = inner
        self._parser = parser

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._parser.decoder.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        decoder = self._parser.decoder
        if decoder.failed:
            return
        try:
            decoder.buffer_updated(nbytes)
        except RemoteProtocolError as exc:
            self._parser.fail(exc)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _read_into_buffers(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """Switch a plain-TCP websocket's transport to buffered reads; True if done.

    Over TLS the decrypted bytes are copied by the SSL layer anyway, so the
    transport keeps calling aiohttp's protocol (which feeds our parser).
    """
    parser: object = ws._parser
    conn = ws._conn
    protocol = getattr(conn, "protocol", None)
    transport = getattr(protocol, "transport", None)
    if (
        not isinstance(parser, _FrameParser)
        or transport is None
        or transport.get_extra_info("sslcontext") is not None
        or not hasattr(transport, "set_protocol")
    ):
        return False
    transport.set_protocol(_BufferedReader(protocol, parser))
    return True
