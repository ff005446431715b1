"""AsyncClientSession: one live, two-way synced Document on a Bokeh server.

The session owns the Document sync (PROTOCOL.md §4.3):

* Outgoing: the Document's change callback runs synchronously on its home thread
  whenever user code changes it. Unless the change came from this session
  (``event.setter is self``, echo suppression) it is serialized right there, as a
  consistent snapshot, and put in the outbox. A writer task on the I/O loop drains
  the outbox into one PATCH-DOC per batch: whatever accumulated while the previous
  batch was written goes out together, so a burst becomes a few messages, and a
  busy synchronous cell's changes still leave at once (the writer runs on the
  engine thread, not the cell's).
* Incoming: every server PATCH-DOC is applied, with ``setter=self``, on the home
  thread, in arrival order; none is dropped while a request is outstanding
  (``bokeh.client`` drops them, §3). A patch that cannot be applied (an unknown
  model reference, §3 "broadcast bug") triggers a re-pull instead of leaving a
  stale or dead session. Patches that arrive between a PUSH-DOC and its OK are the
  server's echo of our own push and are ignored (§3).
* Requests (pull, push, server info, round trip) first flush the outbox, so the
  server sees our changes in the order we made them.

Threads: when the session is driven by the synchronous facade (``client.py``), its
coroutines run on the engine loop and ``home`` is the calling thread's ``Home``;
every touch of the Document hops there. With ``home=None`` (the async API), the
running loop is the home and no hop is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from ssl import SSLContext
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from . import _bokeh
from ._bokeh import Document
from .callbacks import CallbackScheduler
from .connection import Connection
from .engine import Home
from .exceptions import (
    BokehClientError,
    ChangesDiscardedWarning,
    ConnectionClosed,
    HandshakeRejected,
    MessageTooBig,
    RemoteProtocolError,
    ServerError,
    ServerUnreachable,
    SessionStateError,
    Timeout,
    VersionMismatchWarning,
)
from .options import SessionOptions
from .outbox import Outbox
from .pending import without_superseded
from .protocol import urls
from .protocol.messages import MsgType, ServerInfo
from .protocol.wire import JsonText, WireMessage
from .reconnect import Reconnect, ReconnectMode, describe_events
from .status import SessionState, SessionStatus, StatusPublisher
from .transport.websocket import AiohttpTransport

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_SERVER_WEBSOCKET_URL",
    "DEFAULT_TIMEOUT",
    "AsyncClientSession",
    "live_sessions",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SERVER_WEBSOCKET_URL = "ws://localhost:5006/ws"
DEFAULT_MAX_MESSAGE_SIZE = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
#: Server patches waiting to be applied before they are coalesced into a re-pull.
MAX_INCOMING_BACKLOG = 200

_live: weakref.WeakSet[AsyncClientSession] = weakref.WeakSet()


def live_sessions() -> list[AsyncClientSession]:
    """Every session of this process that has not been closed, oldest first."""
    return sorted(
        (s for s in list(_live) if s.status.state is not SessionState.CLOSED),
        key=lambda s: s._created,
    )


class AsyncClientSession:
    """A Bokeh server session driven with ``await``; the async twin of ``ClientSession``.

    Create it, then ``await session.pull()`` (mirror the server's document) or
    ``await session.push(doc)`` (replace it); use ``async with`` to close it.
    All methods must be awaited on one event loop, the one the session first
    connected on.

    Args:
        session_id: the server session to join or create; a random one if None.
        websocket_url: the app's websocket URL, e.g. ``ws://localhost:5006/app/ws``.
        io_loop: accepted for ``bokeh.client`` compatibility and ignored.
        arguments: query arguments for the websocket request; the app sees them in
            ``session_context.request.arguments`` if this connection creates the
            session.
        max_message_size: the largest websocket message (one Bokeh fragment) sent
            or accepted, in bytes; 0 for no limit.
        secret_key: the server's ``BOKEH_SECRET_KEY`` for signed session ids.
        sign_sessions: sign the session id and token (default: from
            ``BOKEH_SIGN_SESSIONS``, or True when ``secret_key`` is given).
        headers: extra HTTP headers for the websocket upgrade (auth, proxies).
        cookies: cookies for the websocket upgrade.
        ssl: an ``ssl.SSLContext`` to verify ``wss://`` with, or False to skip
            verification (default: verify with the system's CAs).
        timeout: seconds allowed for connecting and for each request.
        token_expiration: lifetime in seconds of the tokens this session mints.
        reconnect: the reconnect policy: "auto" (default), "pull", "push", a
            ``Reconnect(...)``, or None/False for none (see ``reconnect.py``).
        home: internal; the home thread of the Document (set by ``ClientSession``).

    Raises:
        ValueError: for a malformed URL or an impossible option combination.
    """

    def __init__(
        self,
        session_id: str | None = None,
        websocket_url: str = DEFAULT_SERVER_WEBSOCKET_URL,
        io_loop: object | None = None,
        arguments: Mapping[str, str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        secret_key: str | bytes | None = None,
        sign_sessions: bool | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        ssl: SSLContext | bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_expiration: int = 300,
        reconnect: Reconnect | ReconnectMode | bool | None = "auto",
        home: Home | None = None,
    ) -> None:
        options = SessionOptions.build(
            session_id=session_id,
            websocket_url=websocket_url,
            arguments=arguments,
            max_message_size=max_message_size,
            secret_key=secret_key,
            sign_sessions=sign_sessions,
            headers=headers,
            cookies=cookies,
            ssl=ssl,
            timeout=timeout,
            token_expiration=token_expiration,
            reconnect=reconnect,
        )
        self._options = options
        self._secret_key, self._signed = options.secret_key, options.signed
        self._id = options.session_id
        self._connect_url = options.websocket_url
        self._url = urls.redact_userinfo(options.websocket_url)  # shown: no credentials
        self._arguments = options.arguments
        self._max_message_size = options.max_message_size
        self._headers = options.headers
        self._cookies = options.cookies
        self._ssl = options.ssl
        self._timeout = options.timeout
        self._token_expiration = options.token_expiration
        self._home = home
        self._created = time.monotonic()
        self._policy = options.reconnect
        self._last_op: Literal["pull", "push"] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._settled: asyncio.Event | None = None  # connected, or gave up
        self._ended: asyncio.Event | None = None  # closed, or the connection ended for good
        self._discarded: list[str] = []
        self._opening = False
        # Work queued for the home thread on behalf of a request still running
        # (a pulled document's install); cancelled when the request is abandoned.
        self._home_work: set[concurrent.futures.Future[None]] = set()
        self._superseded = 0  # incoming changes our pending writes overwrote
        # Incoming patches posted to the home thread and not yet applied; over
        # MAX_INCOMING_BACKLOG they are coalesced into one re-pull (see _on_patch).
        self._backlog = 0
        self._backlog_lock = threading.Lock()
        self._generation = 0  # bumped when queued patches are superseded by a re-pull
        self._coalescing = False
        self._coalesced = 0
        # Async API: incoming work runs on the session's loop, in bounded slices.
        self._loop_home: Home | None = None
        self._loop_thread: int | None = None
        self._lost_at: float | None = None  # time.time() the connection was lost
        self._reconnect_until: float | None = None  # time.time() a reconnect gives up

        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Connection | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._send_lock: asyncio.Lock | None = None
        self._outbox = Outbox(on_answered=self._publish_traffic, on_rejected=self._patch_rejected)
        self._push_reply: asyncio.Future[WireMessage] | None = None
        self._push_in_progress = False
        self._resync: asyncio.Task[None] | None = None
        self._server_info: ServerInfo | None = None
        self._server_info_reply: asyncio.Future[WireMessage] | None = None
        self._failure: BokehClientError | None = None
        self._closed = False

        self._document: Document | None = None
        self._suppress_outgoing = 0
        self._scheduler: CallbackScheduler | None = None

        self._status = StatusPublisher(SessionStatus(url=self._url, session_id=self._id))
        _live.add(self)

    # -- properties (bokeh.client names) ------------------------------------

    @property
    def id(self) -> str:
        """The server session id."""
        return self._id

    @property
    def token(self) -> str:
        """A freshly minted token for this session (as ``bokeh.client`` does)."""
        return _bokeh.session_id_and_token(
            self._id,
            secret_key=self._secret_key,
            signed=self._signed,
            expiration=self._token_expiration,
        )

    @property
    def url(self) -> str:
        """The websocket URL of the app."""
        return self._url

    @property
    def app_url(self) -> str:
        """The http(s) URL of the app (what a browser opens)."""
        plain = urls.redact_userinfo(self._connect_url, replacement="")
        return urls.server_url_for_websocket_url(plain).rstrip("/")

    @property
    def arguments(self) -> dict[str, str] | None:
        """The query arguments sent with the websocket request."""
        return self._arguments

    @property
    def document(self) -> Document | None:
        """The synced Document: None until a pull or push succeeds."""
        return self._document

    @property
    def connected(self) -> bool:
        """True between the server's ACK and the end of the connection."""
        return self._conn is not None and not self._conn.closed and not self._closed

    @property
    def status(self) -> SessionStatus:
        """The latest status snapshot."""
        return self._status.status

    @property
    def last_error(self) -> BokehClientError | None:
        """The error that ended the connection, if it ended abnormally."""
        return self._failure

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

    @property
    def discarded_changes(self) -> list[str]:
        """Local changes a reconnect discarded (policy "pull"), oldest first."""
        return list(self._discarded)

    @property
    def server_info(self) -> ServerInfo | None:
        """The SERVER-INFO reply read after connecting, or None before."""
        return self._server_info

    def subscribe(self, subscriber: Callable[[SessionStatus], None]) -> Callable[[], None]:
        """Call ``subscriber(status)`` on every status change (on the I/O thread).

        Returns a function that unsubscribes.
        """
        return self._status.subscribe(subscriber)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id[:8]}… {self._url} {self.status.state.value}>"

    # -- lifecycle --------------------------------------------------------------

    async def connect(self) -> None:
        """Open the websocket and wait for the server's ACK. No-op when connected.

        Also reads SERVER-INFO once and warns (``UserWarning``) when the server's
        bokeh minor version differs from ours: documents are (de)serialized with
        the local bokeh, so versions must match (PROTOCOL.md §8).

        Raises:
            ConnectError: the server is unreachable (refused, DNS, TLS).
            HandshakeRejected: wrong app path (404), origin refused (403), or the
                token or an auth module was rejected (closed before ACK).
            Timeout: no ACK within ``timeout``.
            SessionStateError: the session was closed.
        """
        self._check_open()
        loop = self._bind_loop()
        if self._reconnector is not None and not self._reconnector.done():
            await self._wait_reconnected()
        assert self._connect_lock is not None
        async with self._connect_lock:
            conn = self._conn
            if conn is not None:
                if not conn.closed:
                    return
                failure = self._failure or conn.failure
                assert failure is not None
                raise failure
            self._status.publish(state=SessionState.CONNECTING)
            try:
                await self._open(loop)
            except BokehClientError as exc:
                self._failure = exc
                self._status.publish(state=SessionState.ERROR, last_error=str(exc))
                raise
            assert self._settled is not None
            self._settled.set()
            self._status.publish(state=SessionState.CONNECTED)

    def _start_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._outbox.start(
            loop,
            self._flush,
            same_thread=self._home is None,
            name=f"bokeh-nb-client writer {self._id[:8]}",
        )

    async def _open(self, loop: asyncio.AbstractEventLoop, *, start_writer: bool = True) -> None:
        """Open a connection, start its writer, read SERVER-INFO (first connect and reconnects)."""
        # While opening, failures reach the caller as exceptions; the connection's
        # on_closed callback must not also start a reconnect for them.
        self._opening = True
        try:
            await self._open_connection(loop, start_writer)
        finally:
            self._opening = False

    async def _open_connection(self, loop: asyncio.AbstractEventLoop, start_writer: bool) -> None:
        url = urls.with_query_arguments(self._connect_url, self._arguments)
        transport = await AiohttpTransport.open(
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
            self._start_writer(loop)
        # SERVER-INFO is pipelined: the next request (usually the pull) goes out
        # without waiting for it; the version check runs when the reply arrives.
        self._server_info_reply = await conn.send(MsgType.SERVER_INFO_REQ, {})
        self._server_info_reply.add_done_callback(self._server_info_arrived)

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
            log.warning("%s", message)
            self._post_home(lambda: warnings.warn(message, VersionMismatchWarning, stacklevel=1))

    async def _wait_reconnected(self) -> None:
        """Wait for a background reconnect, for the policy's ``request_grace`` at most.

        Raises:
            ServerUnreachable: the reconnect did not succeed within the grace period.
        """
        assert self._settled is not None
        policy = self._policy or Reconnect()
        grace = min(policy.request_grace, self._timeout)
        try:
            async with asyncio.timeout(grace):
                await self._settled.wait()
        except TimeoutError:
            since = self._lost_at or time.time()
            until = self._reconnect_until or since + policy.give_up_after
            error = ServerUnreachable(
                f"the server at {self._url} is unreachable since {_clock(since)} "
                f"({time.time() - since:.0f} s ago; last error: {self._failure}); waited "
                f"{grace:g} s for a reconnect. The session keeps reconnecting in the "
                f"background until {_clock(until)}: restart the server, then repeat the call",
                url=self._url,
                since=since,
                until=until,
                grace=grace,
            )
            raise error from self._failure

    async def reconnect(self) -> None:
        """Open a new connection for a session whose connection ended, and resync it.

        For a session that lost its server with no reconnect policy, or whose
        policy gave up. The document is then re-pulled or re-pushed as the policy
        (or, without one, the ``"auto"`` rule of ``reconnect.py``) says. A no-op
        while connected; waits for a reconnect already under way.

        Raises:
            the errors of ``connect`` when the server is still unreachable.
            SessionStateError: the session was closed.
        """
        self._check_open()
        loop = self._bind_loop()
        if self._reconnector is not None and not self._reconnector.done():
            await self._wait_reconnected()
            return
        if self.connected:
            return
        if self._conn is None:
            await self.connect()
            return
        assert self._settled is not None
        assert self._ended is not None
        self._settled.clear()
        self._ended.clear()
        self._status.publish(state=SessionState.RECONNECTING)
        try:
            await self._open(loop, start_writer=False)
            await self._resynchronise(self._policy or Reconnect())
        except BokehClientError as exc:
            self._failure = exc
            self._status.publish(state=SessionState.ERROR, last_error=str(exc))
            if self._conn is not None and not self._conn.closed:
                await self._conn.close(1000, "resync failed")
            self._end()
            raise
        self._start_writer(loop)
        self._failure = None
        self._settled.set()
        self._publish_extra(reconnects=self.status.extra.get("reconnects", 0) + 1)
        self._status.publish(state=SessionState.CONNECTED)

    async def close(self, why: str = "closed") -> None:
        """Send what is still queued, close the websocket, stop document callbacks.

        The Document stays usable locally. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        for event in (self._settled, self._ended):
            if event is not None:
                event.set()
        conn = self._conn
        if conn is not None and not conn.closed:
            # Under the send lock: waits for a batch the writer is writing, then
            # sends what is still queued.
            try:
                async with asyncio.timeout(self._timeout):
                    await self._flush()
            except (BokehClientError, TimeoutError) as exc:
                log.warning("could not send the last queued changes before closing: %r", exc)
        tasks = (self._outbox.stop(), self._resync, self._reconnector)
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None and task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)
        if conn is not None:
            await conn.close(1000, why)
        if self._document is not None:
            await self._on_home(self._detach)
        self._status.publish(state=SessionState.CLOSED)

    async def wait_closed(self) -> None:
        """Return once the session has ended: closed, or its connection lost for good.

        With a reconnect policy, a lost connection ends the session only when the
        reconnect gives up.
        """
        if self._conn is None or self._ended is None:
            return
        await self._ended.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- requests -----------------------------------------------------------------

    async def pull(self) -> None:
        """Connect if needed, then replace the local document with the server's.

        The first pull creates ``document``; later pulls overwrite the same object
        in place without echoing RootRemoved/RootAdded back to the server.

        Raises:
            ServerError: the server answered with ERROR.
            plus the errors of ``connect`` and ``Timeout``/``ConnectionClosed``.
        """
        await self.connect()
        async with self._deadline("pull()"):
            await self._pull_now()
        self._last_op = "pull"

    async def _pull_now(self, *, coalesced: bool = False) -> None:
        conn = self._require_conn()
        installed: concurrent.futures.Future[None] = concurrent.futures.Future()

        def on_reply(reply: WireMessage) -> None:
            # Called by the reader: the install is queued for the home thread in
            # arrival order, before any patch the server sent after its reply.
            if coalesced:
                self._coalescing = False  # patches after this reply apply again
                self._publish_extra(patches_coalesced=self._coalesced)
            self._post_in_order(lambda: _run_into(installed, lambda: self._install_pulled(reply)))

        async with self._locked_send():
            await self._outbox.send_all(conn)
            future = await conn.send(MsgType.PULL_DOC_REQ, {}, on_reply=on_reply)
        self._home_work.add(installed)
        try:
            await future
            self._publish_traffic()
            await asyncio.wrap_future(installed)
        except BaseException:
            # Timeout, cancel, interrupt or ERROR reply: the request has no later
            # effect. Its reply is dropped by the connection; an install already
            # queued for the home thread is cancelled before it runs.
            future.cancel()
            installed.cancel()
            raise
        finally:
            self._home_work.discard(installed)

    async def push(self, document: Document | None = None) -> None:
        """Connect if needed, then replace the server's document with ``document``.

        With no argument, pushes the attached document (or an empty one). After
        the first push the document is attached: later changes to it are sent.

        Raises:
            ValueError: ``document`` differs from the already attached one.
            ServerError: the server refused the document.
        """
        if self._document is not None and document is not None and document is not self._document:
            raise ValueError("Cannot push() a different document from existing session.document")
        await self.connect()
        async with self._deadline("push()"):
            await self._push_now(document)
        self._last_op = "push"

    async def _push_now(self, document: Document | None) -> None:
        conn = self._require_conn()
        async with self._locked_send():
            await self._outbox.send_all(conn)
            content, buffers = await self._on_home(lambda: self._prepare_push(document))
            self._push_in_progress = True  # echo patches may arrive before send() returns
            try:
                future = await conn.send(MsgType.PUSH_DOC, content, buffers=buffers)
            finally:
                self._push_in_progress = False
            self._push_reply = future
        await future
        self._publish_traffic()

    async def request_server_info(self) -> ServerInfo:
        """Return the server's ``{"version_info": {"bokeh": ..., "server": ...}}``.

        Cached per connection, as in ``bokeh.client``.
        """
        await self.connect()
        if self._server_info is None:
            assert self._server_info_reply is not None
            async with self._deadline("request_server_info()"):
                await self._server_info_reply
            self._publish_traffic()
        if self._server_info is None:  # the reply was malformed and ended the connection
            failure = self._failure or (self._conn.failure if self._conn else None)
            assert failure is not None
            raise failure
        return self._server_info

    async def force_roundtrip(self) -> None:
        """Wait until the server has processed everything sent so far.

        Sends the queued changes, then a SERVER-INFO request; when its reply
        arrives, the server has applied every earlier patch and everything it sent
        before the reply (the consequences) has been received and applied.

        Raises:
            ServerError: the server rejected one of the patches sent since the
                last round trip (the first such error; all are logged).
            MessageTooBig: a local change since the last round trip was over
                ``max_message_size`` and was not sent (the session goes on).
            ServerUnreachable: the server is gone and the reconnect did not
                succeed within ``Reconnect.request_grace``.
            Timeout: the round trip took longer than ``timeout``.
        """
        await self.connect()
        conn = self._require_conn()
        async with self._deadline("force_roundtrip()"):
            async with self._locked_send():
                await self._outbox.send_all(conn)
                future = await conn.send(MsgType.SERVER_INFO_REQ, {})
            try:
                await future
            except BaseException:
                future.cancel()  # abandoned: its late reply is dropped
                raise
            # Patches that arrived before the reply were queued for the home
            # thread first: wait until they are applied.
            await self._on_home(_nothing)
        self._publish_traffic()
        errors = self._outbox.take_errors()
        if errors:
            raise errors[0]

    def embed_html(self, model: _bokeh.Model | None = None) -> str:
        """The HTML ``<script>`` that shows this session (or one model of it) live."""
        return _bokeh.server_session_script(model, self._id, self.app_url)

    def abandon_home_work(self) -> None:
        """Cancel home-thread work of requests still running (thread-safe).

        The synchronous facade calls this when a blocking call is interrupted
        (KeyboardInterrupt): the request is being cancelled on the I/O loop, and
        whatever it queued for the home thread (a pulled document's install) must
        not run when the home loop next drains.
        """
        for work in list(self._home_work):
            work.cancel()

    # -- internals: loop binding and state -----------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._connect_lock = asyncio.Lock()
            self._send_lock = asyncio.Lock()
            self._settled = asyncio.Event()
            self._ended = asyncio.Event()
            self._loop_thread = threading.get_ident()
            if self._home is None:
                self._loop_home = Home(loop, owns_loop=False)
        elif self._loop is not loop:
            raise SessionStateError("a session must be used on the event loop it connected on")
        return loop

    def _check_open(self) -> None:
        if self._closed:
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

    def _publish_extra(self, **values: Any) -> None:
        self._status.publish(extra={**self.status.extra, **values})

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

    async def _on_home(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the home thread after the work already posted there."""
        home = self._home or self._loop_home
        if home is None or home.loop.is_closed():
            return fn()  # not bound yet, or the home thread is gone
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        home.post(lambda: _run_into(result, fn))
        return await asyncio.wrap_future(result)

    def _on_connection_closed(self, error: BokehClientError) -> None:
        """Reader callback: the connection ended (I/O loop)."""
        if self._closed or self._opening:
            return
        self._failure = error
        self._outbox.stop()
        if self._reconnector is not None and not self._reconnector.done():
            return  # a reconnect in progress lost its new connection: it retries
        if self._policy is not None and not isinstance(error, MessageTooBig):
            assert self._settled is not None
            assert self._loop is not None
            self._settled.clear()
            self._lost_at = time.time()
            self._reconnect_until = self._lost_at + self._policy.give_up_after
            self._status.publish(state=SessionState.RECONNECTING, last_error=str(error))
            self._reconnector = self._loop.create_task(
                self._reconnect(self._policy, error),
                name=f"bokeh-nb-client reconnect {self._id[:8]}",
            )
            return
        state = SessionState.DISCONNECTED
        if not (isinstance(error, ConnectionClosed) and error.code in (1000, 1001)):
            state = SessionState.ERROR
        self._status.publish(state=state, last_error=str(error))
        self._end()

    def _end(self) -> None:
        """The session is over for good (without ``close()``): stop callbacks, wake waiters."""
        if self._document is not None:
            self._post_home(self._stop_callbacks)
        for event in (self._settled, self._ended):
            if event is not None:
                event.set()

    async def _reconnect(self, policy: Reconnect, error: BokehClientError) -> None:
        """Reconnect with backoff, then resynchronise the document (see reconnect.py)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.give_up_after
        last = error
        for attempt, delay in enumerate(policy.delays(), start=1):
            if attempt > 1 and loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
            self._publish_extra(reconnect_attempt=attempt)
            try:
                # The writer starts after the resync: queued changes must not reach
                # a server session that may be a brand-new one.
                await self._open(loop, start_writer=False)
                await self._resynchronise(policy)
                self._start_writer(loop)
            except BokehClientError as exc:
                last = exc
                log.info("session %s…: reconnect attempt %d failed: %s", self._id[:8], attempt, exc)
                self._status.publish(last_error=f"reconnect attempt {attempt} failed: {exc}")
                if self._conn is not None and not self._conn.closed:
                    await self._conn.close(1000, "resync failed")
                continue
            self._failure = None
            assert self._settled is not None
            self._settled.set()
            self._publish_extra(reconnects=self.status.extra.get("reconnects", 0) + 1)
            self._status.publish(state=SessionState.CONNECTED)
            return
        self._failure = last
        self._status.publish(state=SessionState.ERROR, last_error=f"gave up reconnecting: {last}")
        self._end()

    async def _resynchronise(self, policy: Reconnect) -> None:
        mode = self._last_op if policy.mode == "auto" else policy.mode
        if mode is None or self._document is None:
            return
        pending: list[Any] = []
        pending.extend(self._outbox.take_queued_events())
        unacknowledged = self._outbox.take_unacknowledged()
        if mode == "push":
            await self._push_now(None)  # the Document holds every local change
            return
        await self._pull_now()
        discarded = describe_events(pending)
        if unacknowledged:
            discarded.append(
                f"{unacknowledged} batch(es) of changes sent but not acknowledged before the "
                "connection dropped (the re-pulled document shows whether they arrived)"
            )
        if discarded:
            self._discarded.extend(discarded)
            shown = "; ".join(discarded[:10]) + (" ..." if len(discarded) > 10 else "")
            message = (
                f"session {self._id[:8]}… reconnected and re-pulled the server's document; "
                f"{len(discarded)} local change(s) were discarded: {shown}"
            )
            log.warning("%s", message)
            # Warn on the home thread, where the user's code runs and sees it.
            self._post_home(lambda: warnings.warn(message, ChangesDiscardedWarning, stacklevel=1))

    def _post_home(self, fn: Callable[[], None]) -> None:
        if self._home is None:
            fn()
        else:
            self._home.post(fn)

    def _post_in_order(self, fn: Callable[[], None]) -> None:
        """Queue document work (patches, installs) for the home thread, in arrival order.

        With the async API too it goes through a queue drained in bounded slices
        on the session's loop, so a flood of patches cannot starve other tasks.
        """
        home = self._home or self._loop_home
        if home is None:
            fn()
        else:
            home.post(fn)

    # -- internals: outgoing -------------------------------------------------------

    def _document_changed(self, event: Any) -> None:
        """Document change callback, on the home thread. Must stay cheap."""
        kind = _bokeh.classify_event(event)
        if kind == "patch":
            if self._suppress_outgoing or _bokeh.event_setter(event) is self:
                return
            self._check_home_thread(event)
            if self._closed or (self._ended is not None and self._ended.is_set()):
                log.warning(
                    "session %s… is not connected: a local change was not sent (%s)",
                    self._id[:8],
                    type(event).__name__,
                )
                return
            assert self._document is not None
            self._outbox.put(_bokeh.encode_events(self._document, [event]))
        elif kind == "callback_added" and self._scheduler is not None:
            callback = _bokeh.event_callback(event)
            self._scheduler.add(callback.id, _bokeh.callback_spec(callback))
        elif kind == "callback_removed" and self._scheduler is not None:
            self._scheduler.remove(_bokeh.event_callback(event).id)

    def _check_home_thread(self, event: Any) -> None:
        """Refuse a document change made on a thread that is not the document's home.

        Decision (issue 11 item 3): refuse, loudly, rather than marshal. The change
        is already made in the local document when bokeh tells us about it, and
        serializing it here would race with the home thread applying server
        patches to the same models (the server then rejects or loses changes).
        bokeh's documented way, ``doc.add_next_tick_callback(fn)``, runs ``fn`` on
        the home thread promptly, from any thread.

        Raises:
            SessionStateError: naming ``add_next_tick_callback``; the change was
                not sent to the server.
        """
        home_thread = self._home.thread_id if self._home is not None else self._loop_thread
        if home_thread is None or threading.get_ident() == home_thread:
            return
        raise SessionStateError(
            f"a {_bokeh.describe_event(event)} was made on thread "
            f"{threading.current_thread().name!r}, but the document of session "
            f"{self._id[:8]}… lives on the thread that opened it; the change was NOT sent "
            "to the server (the local document now differs from it). Change the document "
            "from other threads with doc.add_next_tick_callback(fn), which runs fn on "
            "the document's own thread"
        )

    async def _flush(self) -> None:
        async with self._locked_send():
            await self._outbox.send_all(self._require_conn())

    def _patch_rejected(self, error: BokehClientError) -> None:
        if isinstance(error, ServerError):
            log.warning("the server rejected a patch from session %s…: %s", self._id[:8], error)
        else:
            log.warning("session %s…: %s", self._id[:8], error)
        self._status.publish(last_error=str(error))

    # -- internals: incoming -------------------------------------------------------

    def _on_patch(self, message: WireMessage) -> None:
        """Reader callback for a server PATCH-DOC (I/O loop)."""
        push = self._push_reply
        if self._push_in_progress or (push is not None and not push.done()):
            log.debug("ignoring a PATCH-DOC that echoes our PUSH-DOC")
            return
        if self._coalescing:
            # A re-pull is under way: its reply holds this change too.
            self._coalesced += 1
            return
        with self._backlog_lock:
            backlog = self._backlog
        if backlog >= MAX_INCOMING_BACKLOG:
            self._coalesce(backlog)
            return
        # Superseded in wire order (with the OKs): see pending.py.
        content, dropped = without_superseded(message.content, self._outbox.pending)
        self._count_superseded(dropped)
        generation = self._generation
        with self._backlog_lock:
            self._backlog += 1
        self._post_in_order(lambda: self._apply_queued(generation, content, message.buffers))
        self._publish_traffic()

    def _coalesce(self, backlog: int) -> None:
        """Too many patches wait to be applied: replace them with one re-pull (I/O loop).

        The patches already queued are skipped (their generation is over), the
        ones arriving until the re-pull's reply are dropped (the reply contains
        their effect), and the status says how many were coalesced, so nothing is
        dropped silently and memory stays bounded however fast the server sends.
        """
        self._coalescing = True
        self._generation += 1
        self._coalesced += backlog
        log.info(
            "session %s…: %d server patches wait to be applied; coalescing them into a re-pull",
            self._id[:8],
            backlog,
        )
        self._start_resync(coalesce=True)

    def _apply_queued(
        self, generation: int, content: Any, buffers: Sequence[tuple[str, bytes]]
    ) -> None:
        with self._backlog_lock:
            self._backlog -= 1
        if generation != self._generation:
            return  # superseded by a re-pull queued behind it
        self._apply_patch(content, buffers)

    def _count_superseded(self, dropped: int) -> None:
        if dropped:
            self._superseded += dropped
            log.debug("session %s…: %d incoming change(s) superseded", self._id[:8], dropped)

    def _apply_patch(self, content: Any, buffers: Sequence[tuple[str, bytes]]) -> None:
        """Apply one server patch on the home thread."""
        doc = self._document
        if doc is None or self._closed:
            return
        content, dropped = without_superseded(content, self._outbox.pending)
        self._count_superseded(dropped)
        outcome = _bokeh.apply_patch(doc, content, buffers, setter=self)
        if outcome.error is not None:
            log.warning(
                "session %s…: a server patch could not be applied (%r); re-pulling the document",
                self._id[:8],
                outcome.error,
            )
            self._status.publish(last_error=f"re-pulled after a patch failed: {outcome.error!r}")
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._start_resync)

    def _start_resync(self, *, coalesce: bool = False) -> None:
        if self._closed or (self._resync is not None and not self._resync.done()):
            return
        assert self._loop is not None
        self._resync = self._loop.create_task(
            self._resync_document(coalesce), name="bokeh-nb-client re-pull"
        )

    async def _resync_document(self, coalesce: bool) -> None:
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
            self._coalescing = False  # whatever happened, incoming patches apply again

    # -- internals: on the home thread -------------------------------------------------

    def _install_pulled(self, reply: WireMessage) -> None:
        try:
            self._install_document(reply)
        except BokehClientError:
            raise
        except Exception as exc:
            # The reply could not be read as a document: nothing was changed.
            raise RemoteProtocolError(
                f"the server's PULL-DOC-REPLY could not be loaded as a document: {exc!r}"
            ) from exc

    def _install_document(self, reply: WireMessage) -> None:
        if self._document is None:
            doc = _bokeh.new_document_from_reply(reply.content, reply.buffers)
            self._attach(doc)
        else:
            old_roots = {root.id for root in self._document.roots}
            self._suppress_outgoing += 1
            try:
                _bokeh.replace_document_from_reply(self._document, reply.content, reply.buffers)
            finally:
                self._suppress_outgoing -= 1
            new_roots = {root.id for root in self._document.roots}
            if old_roots and new_roots and old_roots.isdisjoint(new_roots):
                log.info(
                    "session %s…: the server session was recreated (server restart or "
                    "expiry): the re-pulled document has new model ids",
                    self._id[:8],
                )
                self._publish_extra(session_recreated=True)
        self._publish_document_counts()

    def _prepare_push(self, document: Document | None) -> tuple[JsonText, list[tuple[str, bytes]]]:
        doc = document or self._document or Document()
        text, buffers = _bokeh.document_content(doc)
        content = (JsonText(text), buffers)
        if self._document is None:
            self._attach(doc)
        self._publish_document_counts()
        return content

    def _attach(self, doc: Document) -> None:
        self._document = doc
        loop = self._home.loop if self._home is not None else self._loop
        assert loop is not None
        self._scheduler = CallbackScheduler(loop)
        doc.on_change(self._document_changed)
        for callback in _bokeh.document_session_callbacks(doc):
            self._scheduler.add(callback.id, _bokeh.callback_spec(callback))

    def _detach(self) -> None:
        doc = self._document
        if doc is not None:
            doc.remove_on_change(self._document_changed)
        self._stop_callbacks()

    def _stop_callbacks(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()

    def _publish_document_counts(self) -> None:
        doc = self._document
        if doc is not None:
            self._status.publish(roots=len(doc.roots), models=len(list(doc.models)))


def _nothing() -> None:
    """A no-op run on the home thread as a barrier behind the work queued there."""


def _clock(when: float) -> str:
    """A wall-clock time for messages, e.g. ``14:03:07``."""
    return time.strftime("%H:%M:%S", time.localtime(when))


def _run_into(result: concurrent.futures.Future[T], fn: Callable[[], T]) -> None:
    """Run ``fn`` and put its outcome into ``result`` (unless it was cancelled)."""
    if result.set_running_or_notify_cancel():
        try:
            result.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - forwarded to whoever awaits ``result``
            result.set_exception(exc)
