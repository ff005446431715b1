"""The ``bokeh.client``-compatible synchronous API.

``ClientSession``, ``pull_session``, ``push_session`` and ``show_session`` have the
names, parameters and defaults of ``bokeh.client`` (3.x), so existing scripts run
unchanged, and they also work inside a Jupyter cell, where ``bokeh.client`` fails
with "Cannot run the event loop while another loop is running".

How: every method submits the matching ``AsyncClientSession`` coroutine to the
package-wide engine loop (a daemon thread, ``engine.py``) and waits on its
future. The waiting thread never needs its own loop to make progress, so a
notebook cell can block on it safely; while it waits on the Document's home
thread it also applies the server's patches as they arrive (``Home.wait``). The
session logic lives in ``session.py``; this module holds only what is about
blocking: which loop a blocking call runs while it waits (``io_loop=``, see
``engine.home_for``), refusing a blocking call that could never be answered (a
server on the caller's own running loop), ``bokeh.client``'s ``connect()`` that
records failures instead of raising, and starting a pushed document's callbacks
once ``push()`` has returned. Rejected alternatives are listed in ``engine.py``.

Keyword-only ``**options`` accepted everywhere: ``secret_key``, ``sign_sessions``,
``headers``, ``cookies``, ``ssl``, ``timeout``, ``token_expiration`` (see
``AsyncClientSession``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from . import _bokeh
from ._bokeh import DEFAULT_SERVER_HTTP_URL, Document, Model
from .engine import get_engine, home_for, loop_serves
from .exceptions import (
    BokehClientError,
    ConnectError,
    ProtocolError,
    ServerOnCallersLoop,
    SessionStateError,
    TransportError,
)
from .inline import show_inline
from .protocol import urls
from .protocol.messages import ServerInfo
from .session import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_SERVER_WEBSOCKET_URL,
    AsyncClientSession,
)
from .status import SessionStatus

__all__ = [
    "DEFAULT_SERVER_HTTP_URL",
    "DEFAULT_SERVER_WEBSOCKET_URL",
    "DEFAULT_SESSION_ID",
    "ClientSession",
    "app_websocket_url",
    "pull_session",
    "push_session",
    "server_url",
    "show_session",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SESSION_ID = "default"


class ClientSession:
    """A live, two-way synced server session; drop-in for ``bokeh.client.ClientSession``.

    Usable in scripts, IPython and notebook cells. The Document's home is the
    thread that creates the session: call blocking methods from that thread (in a
    script, server changes and document callbacks are applied while a blocking
    call or ``loop_until_closed()`` runs; in a notebook, between cells as well).

    Args: as ``AsyncClientSession``, plus ``io_loop``: a tornado ``IOLoop`` (or
    asyncio loop) that is not running, typically the loop of a
    ``bokeh.server.server.Server`` created in this process. Blocking calls then run
    it while they wait, so that server answers, and the document's callbacks run on
    it, as with ``bokeh.client``. A running ``io_loop`` changes nothing.

    Raises:
        TypeError: ``io_loop`` is not an event loop.
    """

    def __init__(
        self,
        session_id: str | None = None,
        websocket_url: str = DEFAULT_SERVER_WEBSOCKET_URL,
        io_loop: object | None = None,
        arguments: Mapping[str, str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        **options: Any,
    ) -> None:
        self._home = home_for(io_loop)
        self._engine = get_engine()
        self._pending_close: concurrent.futures.Future[None] | None = None
        self._session = AsyncClientSession(
            session_id,
            websocket_url,
            io_loop,
            arguments,
            max_message_size,
            home=self._home,
            **options,
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        home = self._home
        if home.owns_loop and not home.on_home_thread():
            coro.close()
            raise SessionStateError(
                "this session's document lives on another thread; call its blocking "
                "methods from the thread that created it"
            )
        try:
            return home.wait(self._engine.submit(coro))
        except KeyboardInterrupt:
            self._session.abandon_home_work()
            raise

    def _server_on_this_loop(self) -> bool:
        """Whether the loop running on this thread serves this session's server.

        Then a blocking call could never be answered (the loop cannot run while it
        waits): a server started in this kernel, or a callback running on the
        ``io_loop`` of an in-process server.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        parts = urlsplit(self._session.url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        return loop_serves(loop, parts.hostname or "localhost", port)

    def _run_on_server(self, coro: Coroutine[Any, Any, T]) -> T:
        """``_run`` for calls that need the server to answer.

        Raises:
            ServerOnCallersLoop: the server runs on this thread's running loop.
        """
        if self._server_on_this_loop():
            coro.close()
            raise ServerOnCallersLoop(
                f"the server at {self.url} runs on this thread's own event loop (for "
                "example a server started in this notebook kernel), which cannot run "
                "while a blocking call waits, so it would never answer. Use the async "
                "API on that loop instead: `session = await pull_session_async(...)` "
                "(or `push_session_async`), from bokeh_nb_client; or run the server in "
                "a thread of its own.",
                url=self.url,
            )
        return self._run(coro)

    # -- bokeh.client API ---------------------------------------------------------

    @property
    def id(self) -> str:
        """The server session id."""
        return self._session.id

    @property
    def token(self) -> str:
        """A freshly minted token for this session."""
        return self._session.token

    @property
    def url(self) -> str:
        """The websocket URL."""
        return self._session.url

    @property
    def document(self) -> Document | None:
        """The synced Document; None until ``pull()`` or ``push()`` succeeds."""
        return self._session.document

    @property
    def connected(self) -> bool:
        """True while connected (after ACK, before close or failure)."""
        return self._session.connected

    @property
    def arguments(self) -> dict[str, str] | None:
        """The query arguments sent with the websocket request."""
        return self._session.arguments

    @property
    def error_reason(self) -> _bokeh.ErrorReason | None:
        """``bokeh.client.states.ErrorReason`` of the failure, else None."""
        return self._session.error_reason

    @property
    def error_code(self) -> int | None:
        """HTTP status or close code of the failure; 0 while there is none."""
        return self._session.error_code

    @property
    def error_detail(self) -> str:
        """Description of the failure; "" while there is none."""
        return self._session.error_detail

    def connect(self) -> None:
        """Connect and wait for the server's ACK. No-op when connected.

        As in ``bokeh.client``, a failure to connect does not raise: ``connected``
        stays False and ``error_reason``, ``error_code`` and ``error_detail`` (and
        ``last_error``) describe the cause; ``pull()``/``push()`` raise it, typed
        (``check_connection_errors()`` does too).

        Raises:
            SessionStateError: the session was closed, or the call is impossible
                here (``ServerOnCallersLoop``: the server runs on this thread's loop).
        """
        try:
            self._run_on_server(self._session.connect())
        except (TransportError, ProtocolError) as exc:
            # Recorded on the session (last_error, error_*): bokeh.client's contract.
            log.info("failed to connect to %s: %s", self.url, exc)

    def pull(self) -> None:
        """Replace the local document with the server's (creating it the first time)."""
        self._run_on_server(self._session.pull())

    def push(self, document: Document | None = None) -> None:
        """Replace the server's document with ``document`` (or the attached one).

        The document's callbacks (``add_periodic_callback`` and the like, added
        before the first push) start after this returns, as with ``bokeh.client``.
        """
        self._run_on_server(self._session.push(document))
        # Posted, not run: they start when the home loop next runs, after we return.
        self._home.post(self._session.start_callbacks)

    def request_server_info(self) -> ServerInfo:
        """The server's version info (cached per connection)."""
        return self._run_on_server(self._session.request_server_info())

    def force_roundtrip(self) -> None:
        """Wait until the server processed all changes sent so far (see AsyncClientSession)."""
        self._run_on_server(self._session.force_roundtrip())

    def check_connection_errors(self) -> None:
        """Raise the error that ended (or prevented) the connection, if any.

        Raises:
            ConnectError or another ``BokehClientError`` (all ``OSError`` or
            ``RuntimeError``, as in ``bokeh.client``).
        """
        if self.connected:
            return
        failure = self._session.last_error
        if failure is not None:
            raise failure
        raise ConnectError(f"session {self.id[:8]}… is not connected to {self.url}", url=self.url)

    def reconnect(self) -> None:
        """Reopen a session whose connection ended and resync it (see AsyncClientSession)."""
        self._run_on_server(self._session.reconnect())

    def close(self, why: str = "closed") -> None:
        """Close the session (sends what is queued first). Idempotent.

        Called on the loop of the session's own server (a document callback of a
        session on an in-process server's ``io_loop``, as in ``bokeh.client``'s
        tests), it cannot wait for the server: the close then completes while
        ``loop_until_closed()`` (or a later blocking call) runs that loop.
        """
        if self._pending_close is not None:
            if not self._server_on_this_loop():
                self._home.wait(self._pending_close)
            return
        if self._server_on_this_loop():
            self._pending_close = self._engine.submit(self._session.close(why))
            self._pending_close.add_done_callback(_report_close_failure)
            return
        self._run(self._session.close(why))

    def loop_until_closed(self) -> None:
        """Block until the session ends, applying server changes and running callbacks.

        Also available as ``_loop_until_closed()``, its name in bokeh 3's
        ``bokeh.client``.
        """
        self._run(self._session.wait_closed())
        if self._pending_close is not None:
            self._home.wait(self._pending_close)

    _loop_until_closed = loop_until_closed

    def show(
        self,
        obj: Model | None = None,
        browser: str | None = None,
        new: Literal["tab", "window"] = "tab",
    ) -> None:
        """Add ``obj`` as a root if needed, then show the session in a browser."""
        if obj is not None:
            doc = self._session.document
            if doc is None:
                raise SessionStateError("pull() or push() before show(obj)")
            _bokeh.add_root_if_missing(doc, obj)
        show_session(session=self, browser=browser, new=new)

    def embed_html(self, model: Model | None = None) -> str:
        """HTML ``<script>`` that embeds this session (or one of its models) live."""
        return self._session.embed_html(model)

    # -- extras ----------------------------------------------------------------------

    @property
    def app_url(self) -> str:
        """The http(s) URL of the app."""
        return self._session.app_url

    @property
    def status(self) -> SessionStatus:
        """The latest status snapshot."""
        return self._session.status

    @property
    def last_error(self) -> BokehClientError | None:
        """The error that ended the connection, if it ended abnormally."""
        return self._session.last_error

    @property
    def discarded_changes(self) -> list[str]:
        """Local changes a reconnect discarded (reconnect policy "pull")."""
        return self._session.discarded_changes

    def subscribe(self, subscriber: Callable[[SessionStatus], None]) -> Callable[[], None]:
        """Call ``subscriber(status)`` on each status change (on the engine thread).

        Returns a function that unsubscribes. The subscriber must be quick and
        must not touch the Document (it runs off the home thread).
        """
        return self._session.subscribe(subscriber)

    @property
    def async_session(self) -> AsyncClientSession:
        """The underlying AsyncClientSession (runs on the engine loop)."""
        return self._session

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ClientSession {self.id[:8]}… {self.url} {self.status.state.value}>"


def _report_close_failure(future: concurrent.futures.Future[None]) -> None:
    """Log how a close that nobody waited for failed (a waiter gets the error raised)."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("closing the session failed: %r", future.exception())


def server_url(url: str = "default", app_path: str | None = None) -> str:
    """The http(s) URL of an app: ``url`` joined with ``app_path``.

    ``url="default"`` means ``DEFAULT_SERVER_HTTP_URL`` (``http://localhost:5006/``).
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    if app_path is not None and not isinstance(app_path, str):
        raise TypeError(f"app_path must be a str or None, got {type(app_path).__name__}")
    base = DEFAULT_SERVER_HTTP_URL if url == "default" else url
    if base.startswith(("ws://", "wss://")):
        raise ValueError(f"url should be the http(s) URL of the app, not a websocket URL: {url!r}")
    try:
        return urls.app_url(base, app_path)
    except ValueError as exc:
        raise ValueError(f"bad url={url!r} / app_path={app_path!r}: {exc}") from None


def app_websocket_url(url: str = "default", app_path: str | None = None) -> str:
    """The websocket URL of the app at ``url`` (+ ``app_path``), as the helpers connect to it."""
    return urls.websocket_url_for_server_url(server_url(url, app_path))


def pull_session(
    session_id: str | None = None,
    url: str = "default",
    io_loop: object | None = None,
    arguments: Mapping[str, str] | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    *,
    app_path: str | None = None,
    **options: Any,
) -> ClientSession:
    """Open a session on the app at ``url`` (+ ``app_path``) and pull its document.

    Returns a connected ``ClientSession`` whose ``document`` mirrors the server's.
    Raises the errors of ``ClientSession.connect``/``pull``; nothing is left open
    on failure.
    """
    _check_options("pull_session", options)
    ws_url = app_websocket_url(url, app_path)
    session = ClientSession(session_id, ws_url, io_loop, arguments, max_message_size, **options)
    _or_close(session, session.pull)
    return session


def push_session(
    document: Document,
    session_id: str | None = None,
    url: str = "default",
    io_loop: object | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    *,
    app_path: str | None = None,
    **options: Any,
) -> ClientSession:
    """Open a session on the app at ``url`` and replace its document with ``document``."""
    if not isinstance(document, Document):
        raise TypeError(f"push_session needs a bokeh Document, got {type(document).__name__}")
    _check_options("push_session", options)
    ws_url = app_websocket_url(url, app_path)
    session = ClientSession(session_id, ws_url, io_loop, None, max_message_size, **options)
    _or_close(session, lambda: session.push(document))
    return session


def _check_options(function: str, options: Mapping[str, Any]) -> None:
    """Refuse unknown ``**options`` naming ``function`` and the closest valid name."""
    import difflib
    import inspect

    known = [
        name
        for name, p in inspect.signature(AsyncClientSession).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name != "home"
    ]
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (options: {', '.join(known)})"
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")


def _or_close(session: ClientSession, action: Any) -> None:
    try:
        action()
    except BaseException:
        session.close()
        raise


def show_session(
    session_id: str | None = None,
    url: str = "default",
    session: ClientSession | None = None,
    browser: str | None = None,
    new: Literal["tab", "window"] = "tab",
    controller: Any | None = None,
    *,
    app_path: str | None = None,
) -> None:
    """Show a session: ``session``'s, or ``session_id`` on ``url``.

    In a Jupyter kernel (and with neither ``browser`` nor ``controller`` given) the
    session is displayed inline, as a live view in the cell's output; elsewhere a
    browser opens on it, as ``bokeh.client`` does. ``%config BokehClient.show``
    overrides the choice (see ``bokeh_nb_client.jupyter.display``).
    """
    if session is not None:
        app = session.app_url
        session_id = session.id
    else:
        app = server_url(url, app_path)
        if session_id is None:
            key, signed = _bokeh.resolve_signing(None, None)
            session_id = _bokeh.new_session_id(key, signed)
    if browser is None and controller is None and show_inline(app, session_id):
        return
    target = urls.http_url_for_session(app, session_id)
    if controller is not None:
        controller.open(target, new={"tab": 2, "window": 1}[new])
    else:
        _bokeh.open_browser(target, browser, new)
