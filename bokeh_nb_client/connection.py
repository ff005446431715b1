"""The asyncio driver of the protocol core, on one running loop.

A ``Connection`` owns one reader task, which feeds every received fragment to the
sans-I/O ``ClientProtocol`` and dispatches what comes out: replies resolve the
futures of ``request()``, unsolicited PATCH-DOCs go to ``on_patch`` (synchronously,
in arrival order, so a patch that arrived before a reply is always handled before
the requester resumes: PROTOCOL.md §3, "reply ordering"). Writes of whole messages
are serialized by one lock, so fragments never interleave (§2, atomicity).

Invariants:

* Nothing is sent before the server's ACK (``open`` returns only after it).
* When the connection ends, for whatever reason, every pending request fails
  with the error that ended it, ``on_closed`` runs exactly once, and the reader
  task has finished: no task outlives the connection.
* One record per outstanding request (``_Outstanding``) owns its reply future,
  its send time and its reply handler. A request whose future is cancelled (a
  timeout, an interrupt, a cancelled ``await``: whoever owns the request cancels
  the future) is forgotten at once: the record and its handler are removed and
  the msgid is abandoned in the protocol, so the late reply is dropped instead of
  being handled or mistaken for an unsolicited message. An ERROR reply also
  removes the record, handler included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import (
    BokehClientError,
    ConnectionClosed,
    ConnectionClosedError,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    ServerError,
    Timeout,
)
from .protocol.events import (
    Acknowledged,
    ErrorReplyReceived,
    Event,
    PatchReceived,
    ReplyReceived,
)
from .protocol.machine import ClientProtocol, State
from .protocol.messages import IdFactory, MsgType
from .protocol.wire import WireMessage
from .transport.base import Transport

__all__ = ["Connection", "ConnectionStats"]

log = logging.getLogger(__name__)

PatchHandler = Callable[[WireMessage], None]
ClosedHandler = Callable[[BokehClientError], None]
ReplyHandler = Callable[[WireMessage], None]


@dataclass(slots=True)
class _Outstanding:
    """One request waiting for its reply: what to resolve, when it left, who handles it."""

    future: asyncio.Future[WireMessage]
    sent_at: float
    on_reply: ReplyHandler | None
    on_answered: Callable[[], None] | None = None


@dataclass(slots=True)
class ConnectionStats:
    """Counters a status view shows. Updated on the connection's loop only."""

    messages_in: int = 0
    messages_out: int = 0
    last_rtt: float | None = None
    last_activity: float | None = None


class Connection:
    """One Bokeh protocol connection over a Transport. Create with :meth:`open`."""

    def __init__(
        self,
        transport: Transport,
        *,
        on_patch: PatchHandler,
        on_closed: ClosedHandler | None = None,
        id_factory: IdFactory | None = None,
    ) -> None:
        self._transport = transport
        self._protocol = ClientProtocol(id_factory)
        self._on_patch = on_patch
        self._on_closed = on_closed
        self._outstanding: dict[str, _Outstanding] = {}
        self._write_lock = asyncio.Lock()
        self._acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = asyncio.Event()
        self._failure: BokehClientError | None = None
        self.stats = ConnectionStats()
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"bokeh-nb-client reader {transport.url}"
        )

    @classmethod
    async def open(
        cls,
        transport: Transport,
        *,
        on_patch: PatchHandler,
        on_closed: ClosedHandler | None = None,
        ack_timeout: float,
        id_factory: IdFactory | None = None,
    ) -> Connection:
        """Start reading ``transport`` and wait for the server's ACK.

        Raises:
            HandshakeRejected: the server closed before ACK (token or auth refused).
            Timeout: no ACK within ``ack_timeout`` seconds.
            RemoteProtocolError: the server sent something other than ACK first.
        """
        conn = cls(transport, on_patch=on_patch, on_closed=on_closed, id_factory=id_factory)
        try:
            async with asyncio.timeout(ack_timeout):
                await asyncio.shield(conn._acked)
        except TimeoutError:
            await conn.close(1000, "no ACK")
            raise Timeout(f"ACK from {transport.url}", ack_timeout) from None
        except BaseException:
            await conn.close(1000, "failed")
            raise
        return conn

    # -- public surface ------------------------------------------------------

    @property
    def url(self) -> str:
        """The websocket URL."""
        return self._transport.url

    @property
    def closed(self) -> bool:
        """True once the connection has ended (for any reason)."""
        return self._closed.is_set()

    @property
    def failure(self) -> BokehClientError | None:
        """The error that ended the connection, once it has ended."""
        return self._failure

    @property
    def bytes_in(self) -> int:
        """Bytes received in websocket payloads."""
        return self._transport.bytes_in

    @property
    def bytes_out(self) -> int:
        """Bytes sent in websocket payloads."""
        return self._transport.bytes_out

    async def wait_closed(self) -> None:
        """Return once the connection has ended."""
        await self._closed.wait()

    async def send(
        self,
        msgtype: MsgType,
        content: Any,
        *,
        buffers: Sequence[tuple[str, bytes | memoryview]] = (),
        on_reply: ReplyHandler | None = None,
        on_answered: Callable[[], None] | None = None,
    ) -> asyncio.Future[WireMessage]:
        """Write one request and return the future of its reply (not awaited).

        ``on_reply``, if given, is called by the reader with the reply as soon as it
        is read, before any later message is handled: use it for work that must be
        ordered with incoming patches (installing a pulled document). It is never
        called once the future is cancelled or has failed. ``on_answered`` is
        called the same way for a reply of either kind (OK or ERROR): a future's
        done-callbacks run later, after messages already buffered behind the reply
        (the outbox releases its pending writes here, in wire order).

        The caller owns the returned future: cancelling it abandons the request
        (its reply, when it comes, is dropped). The future fails with
        ``ServerError`` on an ERROR reply and with the closing error if the
        connection ends first. Raises at once if the connection has already ended
        or a fragment is over the size limit.
        """
        _, future = await self._send(msgtype, content, buffers, on_reply, on_answered)
        return future

    async def _send(
        self,
        msgtype: MsgType,
        content: Any,
        buffers: Sequence[tuple[str, bytes | memoryview]],
        on_reply: ReplyHandler | None = None,
        on_answered: Callable[[], None] | None = None,
    ) -> tuple[str, asyncio.Future[WireMessage]]:
        self._raise_if_closed()
        async with self._write_lock:
            self._raise_if_closed()
            msgid, fragments = self._protocol.send_request(msgtype, content, buffers=buffers)
            future: asyncio.Future[WireMessage] = asyncio.get_running_loop().create_future()
            self._outstanding[msgid] = _Outstanding(
                future, time.perf_counter(), on_reply, on_answered
            )
            future.add_done_callback(lambda f: self._forget(msgid) if f.cancelled() else None)
            try:
                await self._transport.send(fragments)
            except MessageTooBig:
                self._forget(msgid)
                raise
            except ConnectionClosed:
                self._forget(msgid)
                await self._reader_finished()
                self._raise_if_closed()
                raise
            except asyncio.CancelledError:
                # A message cut short leaves the stream unusable: end the connection.
                self._forget(msgid)
                self._reader.cancel()
                raise
            self.stats.messages_out += 1
        return msgid, future

    async def request(
        self,
        msgtype: MsgType,
        content: Any,
        *,
        timeout: float,
        buffers: Sequence[tuple[str, bytes | memoryview]] = (),
    ) -> WireMessage:
        """Send a request and wait for its reply.

        Raises:
            ServerError: the server answered with ERROR.
            Timeout: no reply within ``timeout`` seconds (the request is abandoned).
            ConnectionClosed: the connection ended first.
        """
        msgid: str | None = None
        try:
            async with asyncio.timeout(timeout):
                msgid, future = await self._send(msgtype, content, buffers)
                return await future
        except TimeoutError:
            if msgid is not None:
                self._forget(msgid)
            raise Timeout(str(msgtype), timeout) from None
        except asyncio.CancelledError:
            if msgid is not None:
                self._forget(msgid)
            raise

    def abort(self, error: BokehClientError) -> None:
        """End the connection now because of ``error`` (e.g. a malformed reply).

        Pending requests fail with ``error``; the reader closes the socket.
        """
        self._finish(error)
        self._reader.cancel()

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        """Close the websocket and wait until the reader has finished. Idempotent."""
        if not self._closed.is_set():
            self._protocol.send_close()
            await self._transport.close(code, reason)
        await self._reader_finished()

    # -- internals -------------------------------------------------------------

    def _raise_if_closed(self) -> None:
        if self._closed.is_set():
            assert self._failure is not None
            raise self._failure

    def _forget(self, msgid: str) -> None:
        """Abandon a request: its reply, if it ever comes, is dropped."""
        record = self._outstanding.pop(msgid, None)
        if record is not None and self._protocol.state is not State.CLOSED:
            self._protocol.abandon_request(msgid)

    async def _reader_finished(self) -> None:
        """Wait for the reader to end (cancelling it after 5 s); never raise its outcome.

        How the reader ended is already recorded as ``failure``.
        """
        reader = self._reader
        if reader is asyncio.current_task():
            return
        done, _ = await asyncio.wait({reader}, timeout=5.0)
        if not done:
            reader.cancel()
            await asyncio.wait({reader})
        if not reader.cancelled():
            reader.exception()  # retrieved: it is recorded as the failure

    async def _read_loop(self) -> None:
        transport = self._transport
        protocol = self._protocol
        try:
            while True:
                fragment = await transport.receive()
                event = protocol.receive_fragment(fragment)
                if event is not None:
                    self._dispatch(event)
        except ConnectionClosed as exc:
            self._finish(exc)
            await transport.close(
                exc.code if 1000 <= exc.code < 5000 and exc.code != 1006 else 1000, ""
            )
        except (RemoteProtocolError, MessageTooBig) as exc:
            # Nothing after a framing error can be trusted: close, as bokeh does.
            # Waiters learn the cause at once; the close handshake may take a while.
            self._finish(exc)
            await transport.close(1002 if isinstance(exc, RemoteProtocolError) else 1009, "")
        except asyncio.CancelledError:
            self._finish(
                ConnectionClosedError(
                    f"connection to {transport.url} aborted: a message write was cut short "
                    "or the connection was cancelled",
                    code=1006,
                )
            )
            await transport.close(1000, "cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as the failure every waiter gets
            failure = BokehClientError(
                f"internal error while reading from {transport.url}: {exc!r}"
            )
            failure.__cause__ = exc
            self._finish(failure)
            await transport.close(1011, "client error")

    def _dispatch(self, event: Event) -> None:
        stats = self.stats
        stats.messages_in += 1
        now = time.perf_counter()
        stats.last_activity = time.time()
        match event:
            case PatchReceived(message=message):
                self._on_patch(message)
            case ReplyReceived(reqid=reqid, message=message):
                record = self._outstanding.pop(reqid, None)
                if record is None or record.future.done():
                    return  # abandoned: the requester gave up, nothing may happen now
                self.stats.last_rtt = now - record.sent_at
                if record.on_answered is not None:
                    record.on_answered()
                if record.on_reply is not None:
                    record.on_reply(message)
                record.future.set_result(message)
            case ErrorReplyReceived(reqid=reqid, request_type=rtype, text=text, traceback=tb):
                record = self._outstanding.pop(reqid, None)
                if record is None or record.future.done():
                    return
                self.stats.last_rtt = now - record.sent_at
                if record.on_answered is not None:
                    record.on_answered()
                record.future.set_exception(
                        ServerError(
                            f"the server answered {rtype} with an error: {text}",
                            text=text,
                            traceback=tb,
                            reqid=reqid,
                        )
                    )
            case Acknowledged():
                if not self._acked.done():
                    self._acked.set_result(None)

    def _finish(self, error: BokehClientError) -> None:
        if self._closed.is_set():
            return
        if self._protocol.state is State.AWAITING_ACK and not isinstance(error, MessageTooBig):
            rejected = HandshakeRejected(
                f"{self._transport.url} closed the connection after the websocket "
                "upgrade and before its ACK: most likely the server rejected the "
                "session token (wrong secret key or unsigned id on a signed server, "
                "expired token, clock skew) or an --auth-module refused the request; "
                "the server's log says which",
                url=self._transport.url,
            )
            rejected.__cause__ = error
            error = rejected
        if self._protocol.state is not State.CLOSED:
            code = error.code if isinstance(error, ConnectionClosed) else 1006
            reason = error.reason if isinstance(error, ConnectionClosed) else str(error)
            self._protocol.receive_close(code, reason)
        self._failure = error
        self._closed.set()
        if not self._acked.done():
            self._acked.set_exception(error)
            self._acked.exception()  # retrieved here; open() re-raises it
        pending = list(self._outstanding.values())
        self._outstanding.clear()
        for record in pending:
            if not record.future.done():
                record.future.set_exception(error)
        if self._on_closed is not None:
            self._on_closed(error)
