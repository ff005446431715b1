"""The machinery under ``AsyncClientSession``: connection, reader callbacks, guards.

``session.py`` holds the public surface (connect, pull, push, force_roundtrip,
reconnect, close); this base class holds what it is built from, so that each
module stays readable:

* opening a connection (through the transport seam) and reading SERVER-INFO;
* the reader's callbacks: a PATCH-DOC goes to ``DocumentSync``, the end of the
  connection moves the lifecycle (to RECONNECTING through the ``Reconnector``,
  or to FAILED);
* the pull and push exchanges shared by the public calls and the reconnector;
* background re-pulls (a patch failed to apply, or a backlog is coalesced);
* loop binding, guards that ask the lifecycle, deadlines that name the user's
  call, and status publishing.

Everything here runs on the session's I/O loop unless a docstring says otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator
from ssl import SSLContext
from typing import Literal

from . import _bokeh
from ._bokeh import Document
from .connection import Connection
from .docsync import DocumentSync, run_into
from .exceptions import (
    BokehClientError,
    ConnectionClosed,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    ServerError,
    SessionStateError,
    Timeout,
    VersionMismatchWarning,
)
from .lifecycle import CONNECTED, CONNECTING, FAILED, Lifecycle
from .protocol import urls
from .protocol.messages import MsgType, ServerInfo
from .protocol.wire import JsonText, WireMessage
from .reconnect import Reconnect
from .reconnector import Reconnector
from .status import SessionState, StatusPublisher
from .transport.base import TransportFactory
from .transport.websocket import check_fragment_sizes
from .warn import warn_at_caller

__all__ = ["SessionCore"]

log = logging.getLogger(__name__)


class SessionCore:
    """Base of ``AsyncClientSession``: its state and internal steps (see the module doc).

    The attributes are set by ``AsyncClientSession.__init__``.
    """

    _id: str
    _url: str
    _connect_url: str
    _arguments: dict[str, str] | None
    _max_message_size: int
    _headers: dict[str, str] | None
    _cookies: dict[str, str] | None
    _ssl: SSLContext | bool | None
    _timeout: float
    _policy: Reconnect | None
    _open_transport: TransportFactory
    _last_op: Literal["pull", "push"] | None
    _discarded: list[str]
    _lifecycle: Lifecycle
    _status: StatusPublisher
    _docsync: DocumentSync
    _reconnector: Reconnector
    _loop: asyncio.AbstractEventLoop | None
    _connect_lock: asyncio.Lock | None
    _send_lock: asyncio.Lock | None
    _settled: asyncio.Event | None
    _ended: asyncio.Event | None
    _conn: Connection | None
    _failure: BokehClientError | None
    _repull: asyncio.Task[None] | None
    _repull_again: bool
    _server_info: ServerInfo | None
    _server_info_reply: asyncio.Future[WireMessage] | None

    @property
    def token(self) -> str:
        """A freshly minted token for this session (defined by the session)."""
        raise NotImplementedError

    async def connect(self) -> None:
        """Connect (defined by the session)."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """True between the server's ACK and the end of the connection."""
        conn = self._conn
        return conn is not None and not conn.closed and not self._lifecycle.closed

    @property
    def error_reason(self) -> _bokeh.ErrorReason | None:
        """``bokeh.client``'s ErrorReason once the connection failed, else None."""
        failure = self._failure
        if failure is None or self.connected:
            return None
        if isinstance(failure, HandshakeRejected) and failure.status is not None:
            return _bokeh.error_reason(http=True)
        return _bokeh.error_reason(http=False)

    @property
    def error_code(self) -> int | None:
        """The HTTP status or close code of the failure; 0 while there is none."""
        failure = self._failure
        if failure is None or self.connected:
            return 0
        if isinstance(failure, HandshakeRejected):
            return failure.status
        if isinstance(failure, ConnectionClosed):
            return failure.code
        return None

    @property
    def error_detail(self) -> str:
        """A description of the failure; "" while there is none."""
        failure = self._failure
        if failure is None or self.connected:
            return ""
        return str(failure)

    async def _pull_now(self, *, coalesced: bool = False) -> bool:
        """Pull and install; return whether every root id changed (a new session)."""
        conn = self._require_conn()
        sync = self._docsync
        installed: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def on_reply(reply: WireMessage) -> None:
            # Called by the reader: the install is queued for the home thread in
            # arrival order, before any patch the server sent after its reply.
            if coalesced:
                sync.end_coalescing()
            sync.post_in_order(lambda: run_into(installed, lambda: sync.install_pulled(reply)))

        async with self._locked_send():
            await sync.outbox.send_all(conn)
            future = await conn.send(MsgType.PULL_DOC_REQ, {}, on_reply=on_reply)
        sync.track_home_work(installed)
        try:
            await future
            self._publish_traffic()
            return await asyncio.wrap_future(installed)
        except BaseException:
            # Timeout, cancel, interrupt or ERROR reply: the request has no later
            # effect. Its reply is dropped by the connection; an install already
            # queued for the home thread is cancelled before it runs.
            future.cancel()
            installed.cancel()
            raise
        finally:
            sync.untrack_home_work(installed)

    async def _push_now(self, document: Document | None) -> None:
        conn = self._require_conn()
        sync = self._docsync
        async with self._locked_send():
            await sync.outbox.send_all(conn)
            content = await sync.on_home(lambda: sync.prepare_push(document))
            if content.restore is not None:
                # Refuse before the PUSH-DOC: the server must not keep a document
                # whose arrays could not follow.
                restore_buffers = [data for _, data in content.restore[1]]
                check_fragment_sizes(restore_buffers, self._max_message_size)
            sync.push_in_progress = True  # echo patches may arrive before send() returns
            try:
                future = await conn.send(
                    MsgType.PUSH_DOC, JsonText(content.text), buffers=content.buffers
                )
            finally:
                sync.push_in_progress = False
            sync.push_reply = future
            restored = None
            if content.restore is not None:
                # bokeh < 3.9: the arrays follow as binary buffers in a PATCH-DOC
                # (see _bokeh.DocumentContent), sent before anything else.
                text, buffers = content.restore
                restored = await conn.send(MsgType.PATCH_DOC, JsonText(text), buffers=buffers)
        if restored is None:
            await future
        else:
            await asyncio.gather(future, restored)  # the first error, PUSH-DOC's if both fail
        self._publish_traffic()

    # -- internals: connection ------------------------------------------------------

    async def _open(self, *, start_writer: bool = True) -> None:
        """Open a connection, start its writer, send SERVER-INFO (connects and reconnects)."""
        url = urls.with_query_arguments(self._connect_url, self._arguments)
        transport = await self._open_transport(
            url,
            token=self.token,
            max_message_size=self._max_message_size,
            timeout=self._timeout,
            headers=self._headers,
            cookies=self._cookies,
            ssl=self._ssl,
        )
        conn = await Connection.open(
            transport,
            on_patch=self._on_patch,
            on_closed=self._on_connection_closed,
            ack_timeout=self._timeout,
        )
        self._conn = conn
        if start_writer:
            self._start_writer()
        # SERVER-INFO is pipelined: the next request (usually the pull) goes out
        # without waiting for it; the version check runs when the reply arrives.
        self._server_info_reply = await conn.send(MsgType.SERVER_INFO_REQ, {})
        self._server_info_reply.add_done_callback(self._server_info_arrived)

    def _start_writer(self) -> None:
        assert self._loop is not None
        self._docsync.outbox.start(
            self._loop,
            self._flush,
            same_thread=self._docsync.home_is_loop,
            name=f"bokeh-nb-client writer {self._id[:8]}",
        )

    def _server_info_arrived(self, future: asyncio.Future[WireMessage]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the connection's end is reported by _on_connection_closed
        content = future.result().content
        try:
            server_version = content["version_info"]["bokeh"]
            if not isinstance(server_version, str):
                raise TypeError(type(server_version).__name__)
        except (KeyError, TypeError) as exc:
            error = RemoteProtocolError(
                f"malformed SERVER-INFO-REPLY from {self._url}: {content!r:.200}"
            )
            error.__cause__ = exc
            if self._conn is not None:
                self._conn.abort(error)
            return
        first = self._server_info is None
        info: ServerInfo = content
        self._server_info = info
        self._status.publish(server_version=server_version)
        if first and not _bokeh.versions_compatible(server_version):
            message = (
                f"the server at {self._url} runs bokeh {server_version} but this client "
                f"has bokeh {_bokeh.BOKEH_VERSION}; documents may not (de)serialize "
                "correctly. Install the same bokeh minor version on both sides."
            )
            self._docsync.post_home(lambda: warn_at_caller(message, VersionMismatchWarning))

    def _on_connection_closed(self, error: BokehClientError) -> None:
        """Reader callback: the connection ended (I/O loop)."""
        phase = self._lifecycle.phase
        if self._lifecycle.closed or phase is CONNECTING:
            return  # close() ends it on purpose; a first connect sees its own failure
        self._failure = error
        self._docsync.outbox.stop()
        if phase is not CONNECTED:
            return  # a reconnect in progress retries (or fails) by itself
        if self._policy is not None and not isinstance(error, MessageTooBig):
            self._reconnector.start(self._policy, error)
            return
        state = SessionState.DISCONNECTED
        if not (isinstance(error, ConnectionClosed) and error.code in (1000, 1001)):
            state = SessionState.ERROR
        self._lifecycle.move(FAILED)
        self._status.publish(state=state, last_error=str(error))
        self._end()

    def _end(self) -> None:
        """The session is over for good (without ``close()``): stop callbacks, wake waiters."""
        if self._docsync.document is not None:
            self._docsync.post_home(self._docsync.stop_callbacks)
        for event in (self._settled, self._ended):
            if event is not None:
                event.set()

    def _on_patch(self, message: WireMessage) -> None:
        """Reader callback for a server PATCH-DOC (I/O loop)."""
        self._docsync.receive_patch(message)
        self._publish_traffic()

    def _start_repull(self, coalesce: bool) -> None:
        """Re-pull in the background: a patch failed to apply, or a backlog is coalesced.

        One re-pull runs at a time. A request while one runs is remembered and
        served by another re-pull right after it: the running one's reply may
        predate the changes that prompted the request (they were dropped while
        coalescing, or failed to apply), so it cannot stand in for them.
        """
        if self._lifecycle.closed:
            self._docsync.end_coalescing()
            return
        if self._repull is not None and not self._repull.done():
            self._repull_again = True
            return
        assert self._loop is not None
        self._repull = self._loop.create_task(self._repull_document(coalesce), name="re-pull")

    async def _repull_document(self, coalesce: bool) -> None:
        try:
            await self.connect()
            async with self._deadline("re-pull"):
                await self._pull_now(coalesced=coalesce)
        except BokehClientError as exc:
            log.warning("session %s…: re-pull failed: %s", self._id[:8], exc)
            self._status.publish(last_error=f"re-pull failed: {exc}")
        except Exception as exc:
            log.exception("session %s…: re-pull failed", self._id[:8])
            self._status.publish(last_error=f"re-pull failed: {exc!r}")
        finally:
            if self._repull_again and not self._lifecycle.closed and self._loop is not None:
                # Coalescing (if on) goes on until this next re-pull's reply.
                self._repull_again = False
                self._repull = self._loop.create_task(
                    self._repull_document(self._docsync.coalescing), name="re-pull"
                )
            else:
                self._docsync.end_coalescing()  # whatever happened, patches apply again

    async def _flush(self) -> None:
        async with self._locked_send():
            await self._docsync.outbox.send_all(self._require_conn())

    def _patch_rejected(self, error: BokehClientError) -> None:
        if isinstance(error, ServerError):
            log.warning("the server rejected a patch from session %s…: %s", self._id[:8], error)
        else:
            log.warning("session %s…: %s", self._id[:8], error)
        self._status.publish(last_error=str(error))

    # -- internals: loop binding, guards, status --------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._connect_lock = asyncio.Lock()
            self._send_lock = asyncio.Lock()
            self._settled = asyncio.Event()
            self._ended = asyncio.Event()
            self._docsync.bind(loop)
        elif self._loop is not loop:
            raise SessionStateError("a session must be used on the event loop it connected on")
        return loop

    def _settled_event(self) -> asyncio.Event:
        assert self._settled is not None
        return self._settled

    def _ended_event(self) -> asyncio.Event:
        assert self._ended is not None
        return self._ended

    def _grace(self) -> float:
        return min((self._policy or Reconnect()).request_grace, self._timeout)

    def _check_open(self) -> None:
        if self._lifecycle.closed:
            raise SessionStateError(f"session {self._id[:8]}… is closed; open a new one")

    def _require_conn(self) -> Connection:
        conn = self._conn
        if conn is None:
            raise SessionStateError("not connected")
        if conn.closed:
            assert conn.failure is not None
            raise conn.failure
        return conn

    def _locked_send(self) -> asyncio.Lock:
        assert self._send_lock is not None
        return self._send_lock

    @contextlib.asynccontextmanager
    async def _deadline(self, operation: str) -> AsyncIterator[None]:
        """Bound a whole operation (lock waits, writes, reply) by ``timeout``.

        ``operation`` is the user's call, e.g. ``"force_roundtrip()"``: the
        ``Timeout`` names it, not the wire message behind it.
        """
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except TimeoutError:
            raise Timeout(f"{operation} on {self._url}", self._timeout) from None

    def _publish_extra(self, **values: object) -> None:
        self._status.publish(extra={**self._status.status.extra, **values})

    def _publish_traffic(self) -> None:
        conn = self._conn
        if conn is not None:
            stats = conn.stats
            self._status.publish(
                messages_in=stats.messages_in,
                messages_out=stats.messages_out,
                bytes_in=conn.bytes_in,
                bytes_out=conn.bytes_out,
                last_rtt=stats.last_rtt,
                last_activity=stats.last_activity,
            )


def _nothing() -> None:
    """A no-op run on the home thread as a barrier behind the work queued there."""
