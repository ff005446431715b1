"""AsyncClientSession: one live, two-way synced Document on a Bokeh server.

The session is the stateful heart of the package. It is composed of:

* ``lifecycle.Lifecycle``: the one state machine (new, connecting, connected,
  reconnecting, failed, closing, closed); every guard asks it.
* ``docsync.DocumentSync``: the Document and both directions of its sync
  (outbox, incoming patches in bounded slices, echo suppression, pending writes).
* ``reconnector.Reconnector``: reconnect orchestration, one reopen sequence.
* ``connection.Connection``: the protocol driver; one record per outstanding
  request owns its deadline, reply handler and cancellation, so a request that
  raised (timeout, interrupt, cancel, ERROR reply) has no later effect.

This module holds the public surface: connect, pull, push, request_server_info,
force_roundtrip, reconnect and close. Requests first flush the outbox, so the
server sees our changes in the order we made them.

Threads: when driven by the synchronous facade (``client.py``) the coroutines run
on the engine loop and ``home`` is the calling thread's ``Home``; every touch of
the Document hops there. With ``home=None`` (the async API), the session's loop
is the home.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from ssl import SSLContext
from types import TracebackType
from typing import Literal, Self

from . import _bokeh, registry
from ._bokeh import Document
from .connection import Connection
from .docsync import DocumentSync
from .engine import Home
from .exceptions import (
    BokehClientError,
)
from .lifecycle import CLOSED as PHASE_CLOSED
from .lifecycle import CLOSING as PHASE_CLOSING
from .lifecycle import CONNECTED, CONNECTING, FAILED, NEW, Lifecycle
from .options import SessionOptions
from .outbox import Outbox
from .protocol import urls
from .protocol.messages import MsgType, ServerInfo
from .protocol.wire import WireMessage
from .reconnect import Reconnect, ReconnectMode
from .reconnector import Reconnector
from .registry import live_sessions
from .session_core import SessionCore, _nothing
from .status import SessionState, SessionStatus, StatusPublisher
from .transport.base import TransportFactory
from .transport.websocket import AiohttpTransport

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_SERVER_WEBSOCKET_URL",
    "DEFAULT_TIMEOUT",
    "AsyncClientSession",
    "live_sessions",
]

log = logging.getLogger(__name__)

DEFAULT_SERVER_WEBSOCKET_URL = "ws://localhost:5006/ws"
DEFAULT_MAX_MESSAGE_SIZE = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0


class AsyncClientSession(SessionCore):
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
        transport_factory: how the websocket is opened (the transport seam):
            ``AiohttpTransport.open`` unless a test passes an in-memory one.
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
        transport_factory: TransportFactory | None = None,
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
        self._policy = options.reconnect
        self._open_transport: TransportFactory = transport_factory or AiohttpTransport.open
        self._last_op: Literal["pull", "push"] | None = None
        self._discarded: list[str] = []

        self._lifecycle = Lifecycle()
        self._status = StatusPublisher(SessionStatus(url=self._url, session_id=self._id))
        self._docsync = DocumentSync(
            setter=self,
            label=f"{self._id[:8]}…",
            lifecycle=self._lifecycle,
            status=self._status,
            outbox=Outbox(on_answered=self._publish_traffic, on_rejected=self._patch_rejected),
            home=home,
            request_repull=self._start_repull,
        )
        self._reconnector = Reconnector(self)

        # Bound to the first loop the session is used on (``_bind_loop``).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._send_lock: asyncio.Lock | None = None
        self._settled: asyncio.Event | None = None  # connected, or gave up
        self._ended: asyncio.Event | None = None  # closed, or the connection ended for good

        self._conn: Connection | None = None
        self._failure: BokehClientError | None = None
        self._repull: asyncio.Task[None] | None = None
        self._repull_again = False
        self._server_info: ServerInfo | None = None
        self._server_info_reply: asyncio.Future[WireMessage] | None = None
        registry.register(self)

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
        return self._docsync.document

    @property
    def status(self) -> SessionStatus:
        """The latest status snapshot."""
        return self._status.status

    @property
    def last_error(self) -> BokehClientError | None:
        """The error that ended the connection, if it ended abnormally."""
        return self._failure

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

        Also reads SERVER-INFO once and warns (``VersionMismatchWarning``) when the
        server's bokeh minor version differs from ours (PROTOCOL.md §8). While a
        reconnect is under way, waits for it for ``Reconnect.request_grace``.

        Raises:
            ConnectError: the server is unreachable (refused, DNS, TLS).
            HandshakeRejected: wrong app path (404), origin refused (403), or the
                token or an auth module was rejected (closed before ACK).
            ServerUnreachable: the connection was lost and the reconnect did not
                succeed within the grace period (it goes on in the background).
            Timeout: no ACK within ``timeout``.
            SessionStateError: the session was closed.
        """
        self._check_open()
        self._bind_loop()
        if self._reconnector.running:
            await self._reconnector.wait(self._grace())
        assert self._connect_lock is not None
        async with self._connect_lock:
            conn = self._conn
            if conn is not None:
                if not conn.closed:
                    return
                failure = self._failure or conn.failure
                assert failure is not None
                raise failure
            self._lifecycle.move(CONNECTING)
            self._status.publish(state=SessionState.CONNECTING)
            try:
                await self._open()
            except BokehClientError as exc:
                self._failure = exc
                self._lifecycle.move(FAILED)
                self._status.publish(state=SessionState.ERROR, last_error=str(exc))
                raise
            except BaseException:
                # Interrupted (cancelled, Ctrl-C): not connecting any more; the
                # next call connects again.
                self._lifecycle.move(NEW)
                self._status.publish(state=SessionState.NOT_CONNECTED)
                raise
            self._lifecycle.move(CONNECTED)
            self._settled_event().set()
            self._status.publish(state=SessionState.CONNECTED)

    async def reconnect(self) -> None:
        """Open a new connection for a session whose connection ended, and resync it.

        For a session that lost its server with no reconnect policy, or whose
        policy gave up. The document is then re-pulled or re-pushed as the policy
        (or, without one, the ``"auto"`` rule of ``reconnect.py``) says. A no-op
        while connected; waits (up to ``timeout``) for a reconnect under way.

        Raises:
            the errors of ``connect`` when the server is still unreachable.
            SessionStateError: the session was closed.
        """
        self._check_open()
        self._bind_loop()
        if self._reconnector.running:
            await self._reconnector.wait(self._timeout)
            return
        if self.connected:
            return
        if self._conn is None:
            await self.connect()
            return
        await self._reconnector.reconnect_now(self._policy or Reconnect())

    async def close(self, why: str = "closed") -> None:
        """Send what is still queued, close the websocket, stop document callbacks.

        The Document stays usable locally. Idempotent.
        """
        if self._lifecycle.closed:
            return
        self._lifecycle.move(PHASE_CLOSING)
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
        tasks = (self._docsync.outbox.stop(), self._repull, self._reconnector.cancel())
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None and task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)
        if conn is not None:
            await conn.close(1000, why)
        if self._docsync.document is not None:
            await self._docsync.on_home(self._docsync.detach)
        self._lifecycle.move(PHASE_CLOSED)
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
        in place without echoing RootRemoved/RootAdded back to the server. A pull
        that raised (timeout, interrupt, cancel) changes nothing, even when its
        reply arrives later.

        Raises:
            ServerError: the server answered with ERROR.
            plus the errors of ``connect`` and ``Timeout``/``ConnectionClosed``.
        """
        await self.connect()
        async with self._deadline("pull()"):
            await self._pull_now()
        self._last_op = "pull"

    async def push(self, document: Document | None = None) -> None:
        """Connect if needed, then replace the server's document with ``document``.

        With no argument, pushes the attached document (or an empty one). After
        the first push the document is attached: later changes to it are sent.

        Raises:
            ValueError: ``document`` differs from the already attached one.
            ServerError: the server refused the document.
        """
        attached = self._docsync.document
        if attached is not None and document is not None and document is not attached:
            raise ValueError("Cannot push() a different document from existing session.document")
        await self.connect()
        async with self._deadline("push()"):
            await self._push_now(document)
        self._last_op = "push"
        if self._docsync.home_is_loop:  # the sync facade starts them on its home thread
            self.start_callbacks()

    def start_callbacks(self) -> None:
        """Start the pushed document's session callbacks (on its home thread).

        ``push()`` leaves them stopped until it has returned, as bokeh.client does,
        so a callback may use the session the caller just got back.
        """
        self._docsync.start_callbacks()

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
                await self._docsync.outbox.send_all(conn)
                future = await conn.send(MsgType.SERVER_INFO_REQ, {})
            try:
                await future
            except BaseException:
                future.cancel()  # abandoned: its late reply is dropped
                raise
            # Patches that arrived before the reply were queued for the home
            # thread first: wait until they are applied.
            await self._docsync.on_home(_nothing)
        self._publish_traffic()
        errors = self._docsync.outbox.take_errors()
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
        self._docsync.abandon_home_work()
