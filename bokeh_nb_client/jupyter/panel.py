"""``StatusPanel``: a live ipywidgets view of this kernel's Bokeh sessions, with actions.

The panel is a composite of stock ipywidgets (no front-end build):

* one row per session of the kernel (the magics' sessions, sessions bound to
  notebook variables, and every other open session of the process): server and
  app, short session id (the full id on hover), state (with the reason of an
  error), the server's bokeh version, roots and models, messages and bytes in
  and out, the last round-trip time, the last activity and the last error;
  buttons Pull, Push, Show, Close and Reconnect;
* a browser of Bokeh servers: enter a URL, list its apps
  (:mod:`.browse`), and open a session on one of them (a new one, or an existing
  session id to attach to);
* an output area where Show puts the live inline view of a session.

Threads and loops (STYLE.md §3, §4.6):

* **Status is pushed, never polled.** Each row subscribes to its session's
  status. Subscribers run on the session's I/O thread (the engine thread for a
  ``ClientSession``), so a snapshot is only *recorded* there; a
  :class:`StatusThrottle` keeps the latest snapshot per row and applies them on
  the kernel's loop, from a timer handle, at most every ``interval`` seconds
  (0.1: about ten updates a second however busy a session is). Widget traits are
  therefore only set on the kernel thread, and the panel keeps following its
  sessions while the kernel is idle (the loop runs between cells).
* **Buttons never block the kernel.** A click (a comm message, handled on the
  kernel thread; a click arriving on any other thread is handed to the kernel's
  loop with ``call_soon_threadsafe``) starts an owned task on the kernel loop and
  returns. For a ``ClientSession`` the task submits the session's own coroutine
  (``session.async_session.pull()`` ...) to the engine loop and awaits it with
  ``asyncio.wrap_future``; for an ``AsyncClientSession`` it awaits the coroutine
  directly (that session lives on the kernel loop). Why not the blocking methods
  in a worker thread (``asyncio.to_thread(session.pull)``)? They would work, since
  the document work they post goes to the kernel's loop, which keeps running, but
  they tie up a thread per action, cannot be cancelled, and hide the one place
  where the document is touched. With the engine route the kernel loop stays free
  to apply the pulled document on its home thread (``Home.post``), cancelling a
  task cancels the engine's coroutine too, and no thread is added.
* While an action runs its button is disabled (and says so). A failure is shown
  in the row and logged; nothing is swallowed. Every task belongs to the panel,
  is kept in a set, and is cancelled by :meth:`StatusPanel.close`.

Reconnect: ``ClientSession`` has no public way to re-open a session whose
connection ended (ERROR or DISCONNECTED: its reconnect policy gave up, or there
was none). The panel's Reconnect therefore opens a *new* session object with the
same session id, app URL and query arguments, and the options of the extension's
configuration (``BokehClient``: timeout and secret key; the original session's
headers, cookies, TLS and reconnect options are not public and are not carried
over), pulls it, points the row at it, rebinds every name of the magics' registry
and of the notebook namespace that referred to the old session, and closes the
old one. If the server kept the session, the same server session is joined; if
not, the server creates it again under that id.

Secrets: session snapshots carry no token, key or cookie, and every text the
panel shows (URLs, errors, messages) is also scrubbed of ``user:password@``
parts, Bokeh tokens and the configured secret key, so none reaches widget state.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import html
import json
import keyword
import logging
import os
import re
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import ipywidgets as widgets

from ..client import ClientSession
from ..engine import get_engine
from ..exceptions import BokehClientError
from ..protocol import urls
from ..session import AsyncClientSession, live_sessions
from ..status import SessionState, SessionStatus
from ._ipython import get_ipython
from .browse import AppInfo, ServerListing, list_apps, normalize_server_url
from .display import (
    SessionRow,
    _view_route,
    closed_view,
    inline_view,
    mark_views_closed,
    render_sessions,
    render_status,
    short_id,
)

__all__ = [
    "ACTIONS",
    "SessionRowView",
    "StatusPanel",
    "StatusThrottle",
    "close_shared_panel",
    "kernel_sessions",
    "redact",
    "shared_panel",
]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

#: Seconds between two applications of status snapshots (about 10 a second).
DEFAULT_INTERVAL = 0.1

#: The actions of a row, in button order.
ACTIONS = ("pull", "push", "show", "close", "reconnect")

_LABELS = {
    "pull": "Pull",
    "push": "Push",
    "show": "Show",
    "close": "Close",
    "reconnect": "Reconnect",
}
_RUNNING_LABELS = {
    "pull": "Pulling…",
    "push": "Pushing…",
    "show": "Showing…",
    "close": "Closing…",
    "reconnect": "Reconnecting…",
}
_DONE = {
    "pull": "pulled",
    "push": "pushed",
    "show": "shown below the panel",
    "close": "closed",
    "reconnect": "reconnected",
}
_TOOLTIPS = {
    "pull": "Replace the kernel's document with the server's",
    "push": "Replace the server's document with the kernel's",
    "show": "Show a live view of this session below the panel",
    "close": "Close this session (the kernel's document stays usable)",
    "reconnect": (
        "Open this server session again (same id, URL and arguments) after its connection ended"
    ),
}
_UNSTEERABLE = (
    "The panel cannot tell which loop runs this session (it is bound to no name in this "
    "kernel); bind it to a variable and refresh the panel"
)

_STATE_COLOURS: Mapping[SessionState, str] = {
    SessionState.CONNECTED: "#2e7d32",
    SessionState.CONNECTING: "#b26a00",
    SessionState.RECONNECTING: "#b26a00",
    SessionState.NOT_CONNECTED: "#757575",
    SessionState.CLOSED: "#757575",
    SessionState.DISCONNECTED: "#c62828",
    SessionState.ERROR: "#c62828",
}
_ENDED = (SessionState.ERROR, SessionState.DISCONNECTED)
_LIVE = (
    SessionState.NOT_CONNECTED,
    SessionState.CONNECTING,
    SessionState.CONNECTED,
    SessionState.RECONNECTING,
)

Steerable = ClientSession | AsyncClientSession
#: "sync" (a ClientSession), "async" (an AsyncClientSession), "-" (not known here).
RowKind = Literal["sync", "async", "-"]


# -- secrets -------------------------------------------------------------------------

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
# A Bokeh token: base64url JSON ("eyJ...") optionally followed by ".signature".
_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+)*")


def _secret_key() -> str | None:
    from . import current_config

    config = current_config()
    if config is not None:
        return config.secret_key()
    return os.environ.get("BOKEH_SECRET_KEY") or None


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without credentials: ``user:password@`` in URLs, Bokeh tokens, ``secrets``.

    The configured secret key (``BokehClient.secret_key_env``, else
    ``BOKEH_SECRET_KEY``) is always one of the secrets.
    """
    for secret in (*secrets, _secret_key()):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1***@", text)
    return _TOKEN.sub("<token>", text)


def _esc(text: str) -> str:
    return html.escape(redact(text))


# -- the throttle ----------------------------------------------------------------------


class Cancellable(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


class LoopLike(Protocol):
    """The part of an event loop the throttle uses (an ``asyncio`` loop, or a test's fake)."""

    def time(self) -> float: ...

    def call_soon_threadsafe(self, callback: Callable[[], object], /) -> object: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Cancellable: ...


class StatusThrottle(Generic[K, V]):
    """Coalesce values posted from any thread; apply the latest per key on one loop.

    :meth:`post` may be called from any thread and only records the value. The
    recorded values are applied together by ``apply`` on the loop's thread, from a
    timer handle, at most once every ``interval`` seconds: a burst of a hundred
    snapshots becomes one update with the last of them. The first value after a
    quiet period is applied at the next loop iteration.

    Args:
        loop: the loop whose thread may touch what ``apply`` touches.
        apply: called with ``{key: latest value}``; on the loop's thread only.
        interval: the least time between two calls of ``apply``, in seconds.
    """

    def __init__(
        self,
        loop: LoopLike,
        apply: Callable[[dict[K, V]], None],
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._loop = loop
        self._apply = apply
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[K, V] = {}
        self._armed = False  # an _arm call or a timer is on its way
        self._timer: Cancellable | None = None
        self._last_flush: float | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """How many keys wait to be applied."""
        with self._lock:
            return len(self._pending)

    def post(self, key: K, value: V) -> None:
        """Record ``value`` as the latest for ``key``; any thread. Never raises."""
        with self._lock:
            if self._closed:
                return
            self._pending[key] = value
            if self._armed:
                return
            self._armed = True
        try:
            self._loop.call_soon_threadsafe(self._arm)
        except RuntimeError:  # the loop is closed: the kernel is going away
            log.debug("status update dropped: the panel's loop is closed")

    def _arm(self) -> None:
        if self._closed or self._timer is not None:
            return
        now = self._loop.time()
        due = now if self._last_flush is None else max(now, self._last_flush + self._interval)
        self._timer = self._loop.call_at(due, self.flush)

    def flush(self) -> None:
        """Apply what is pending now. Call on the loop's thread."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            pending, self._pending = self._pending, {}
            self._armed = False
        self._last_flush = self._loop.time()
        if pending and not self._closed:
            self._apply(pending)

    def close(self) -> None:
        """Stop: cancel the timer and forget what is pending. Idempotent."""
        with self._lock:
            self._closed = True
            self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# -- formatting --------------------------------------------------------------------------


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def _clock(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def _now() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def _server_and_app(app_url: str) -> tuple[str, str]:
    parts = urlsplit(app_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", parts.path or "/"


def _app_url_of(status: SessionStatus) -> str:
    try:
        return urls.server_url_for_websocket_url(status.url).rstrip("/")
    except ValueError:
        return status.url


def _state_text(status: SessionStatus) -> str:
    state = status.state
    if state is SessionState.RECONNECTING:
        attempt = status.extra.get("reconnect_attempt")
        return f"reconnecting (attempt {attempt})" if attempt else "reconnecting"
    if state in _ENDED and status.last_error:
        return f"{state.value}: {status.last_error}"
    return str(state.value)


def _stats_text(status: SessionStatus) -> str:
    parts = [
        f"bokeh {status.server_version}" if status.server_version else "bokeh ?",
        f"{status.roots} roots, {status.models} models",
        f"in {status.messages_in} msgs ({_size(status.bytes_in)})",
        f"out {status.messages_out} msgs ({_size(status.bytes_out)})",
        f"rtt {status.last_rtt * 1000:.1f} ms" if status.last_rtt is not None else "rtt -",
        f"last activity {_clock(status.last_activity)}",
    ]
    reconnects = status.extra.get("reconnects")
    if reconnects:
        parts.append(f"reconnected {reconnects} times")
    if status.extra.get("session_recreated"):
        parts.append("server session was recreated")
    return " · ".join(parts)


# -- one row -------------------------------------------------------------------------------


class SessionRowView(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The widgets of one session: what it is, how it is doing, and its buttons.

    Shown inside a :class:`StatusPanel`, and on its own by ``%bokeh_pull`` and
    ``%bokeh_push`` (the same widget: both views follow the session). Built and
    changed on the kernel thread only.

    Args:
        status: the first snapshot to show.
        session: the session the buttons act on, or None for a row that only
            renders snapshots.
        names: the names the session is bound to in this kernel.
        kind: "sync" (a ClientSession), "async" (an AsyncClientSession) or "-"
            (unknown here: the buttons are disabled).
        on_action: called with ``(row, action)`` when a button is clicked.
    """

    def __init__(
        self,
        status: SessionStatus,
        *,
        session: Steerable | None = None,
        names: Sequence[str] = (),
        kind: RowKind = "-",
        on_action: Callable[[SessionRowView, str], None] | None = None,
    ) -> None:
        self._title = widgets.HTML()
        self._stats = widgets.HTML()
        self._error = widgets.HTML()
        self._message = widgets.HTML()
        self._buttons = {
            action: widgets.Button(
                description=_LABELS[action],
                tooltip=_TOOLTIPS[action],
                layout=widgets.Layout(width="auto"),
            )
            for action in ACTIONS
        }
        for action, button in self._buttons.items():
            button.add_class(f"bnc-action-{action}")
            button.on_click(lambda _button, action=action: self._clicked(action))
        self._title.add_class("bnc-row-title")
        self._stats.add_class("bnc-row-stats")
        self._error.add_class("bnc-row-error")
        self._message.add_class("bnc-row-message")
        actions = widgets.HBox([*self._buttons.values(), self._message])
        super().__init__(
            children=[self._title, self._stats, self._error, actions],
            layout=widgets.Layout(
                border="1px solid #ddd", padding="2px 6px", margin="2px 0", width="auto"
            ),
        )
        self.add_class("bnc-panel-row")
        self._session = session
        self._names = tuple(names)
        self._kind = kind
        self._on_action = on_action
        self._running: set[str] = set()
        self._status = status
        self.render(status)

    # -- what the row shows ----------------------------------------------------------

    @property
    def session(self) -> Steerable | None:
        """The session the buttons act on (None for a render-only row)."""
        return self._session

    @property
    def inner(self) -> AsyncClientSession | None:
        """The AsyncClientSession behind :attr:`session` (identity of the row's session)."""
        session = self._session
        return session.async_session if isinstance(session, ClientSession) else session

    @property
    def status(self) -> SessionStatus:
        """The snapshot the row shows."""
        return self._status

    @property
    def names(self) -> tuple[str, ...]:
        """The names the session is bound to in this kernel."""
        return self._names

    @property
    def kind(self) -> RowKind:
        """One of "sync", "async" or "-" (see the class docstring)."""
        return self._kind

    @property
    def buttons(self) -> Mapping[str, widgets.Button]:
        """The action buttons by action name (see :data:`ACTIONS`)."""
        return dict(self._buttons)

    @property
    def title(self) -> widgets.HTML:
        """Names, server, app, session id and state."""
        return self._title

    @property
    def stats(self) -> widgets.HTML:
        """Version, roots and models, traffic, round trip, last activity."""
        return self._stats

    @property
    def message(self) -> widgets.HTML:
        """The outcome of the last action."""
        return self._message

    @property
    def running(self) -> frozenset[str]:
        """The actions running now."""
        return frozenset(self._running)

    def point_at(self, session: Steerable, *, kind: RowKind) -> None:
        """Make the row act on (and describe) ``session`` from now on (Reconnect)."""
        self._session = session
        self._kind = kind
        self.render(session.status)

    def set_names(self, names: Sequence[str], kind: RowKind | None = None) -> None:
        """Update the names (and kind) the row shows."""
        self._names = tuple(names)
        if kind is not None:
            self._kind = kind
        self.render(self._status)

    def render(self, status: SessionStatus) -> None:
        """Show ``status``. Kernel thread only."""
        self._status = status
        session = self._session
        app_url = session.app_url if session is not None else _app_url_of(status)
        server, app = _server_and_app(app_url)
        colour = _STATE_COLOURS.get(status.state, "#757575")
        label = ", ".join(self._names) or "(unnamed)"
        kind = {"sync": "ClientSession", "async": "AsyncClientSession"}.get(self._kind, "")
        self._title.value = (
            f'<span class="bnc-names" title="{_esc(kind)}"><b>{_esc(label)}</b></span> '
            f'<span class="bnc-server">{_esc(server)}</span>'
            f'<span class="bnc-app"><b>{_esc(app)}</b></span> · session '
            f'<code class="bnc-session-id" title="{_esc(status.session_id)}">'
            f"{_esc(short_id(status.session_id))}</code> · "
            f'<span class="bnc-state" data-state="{status.state.name.lower()}" '
            f'style="color:{colour};font-weight:bold">{_esc(_state_text(status))}</span>'
        )
        self._stats.value = (
            f'<span style="font-size:90%;color:#555">{_esc(_stats_text(status))}</span>'
        )
        shown_in_state = status.state in _ENDED
        if status.last_error and not shown_in_state:
            self._error.value = (
                f'<span style="font-size:90%;color:#c62828">last error: '
                f"{_esc(status.last_error)}</span>"
            )
            self._error.layout.display = None
        else:
            self._error.value = ""
            self._error.layout.display = "none"  # no empty line
        self._update_buttons()

    def set_running(self, action: str, running: bool) -> None:
        """Mark ``action`` as running (its button disabled) or finished."""
        if running:
            self._running.add(action)
        else:
            self._running.discard(action)
        self._update_buttons()

    def say(self, text: str, *, error: bool = False) -> None:
        """Show the outcome of an action next to the buttons."""
        colour = "#c62828" if error else "#2e7d32"
        kind = "error" if error else "ok"
        self._message.value = (
            f'<span class="bnc-outcome" data-kind="{kind}" style="color:{colour}">'
            f"{_esc(text)}</span>"
            if text
            else ""
        )

    def _update_buttons(self) -> None:
        state = self._status.state
        session = self._session
        has_document = session is not None and session.document is not None
        steerable = self._on_action is not None and session is not None and self._kind != "-"
        allowed = {
            "pull": state in _LIVE,
            "push": state in _LIVE and has_document,
            "show": state is SessionState.CONNECTED,
            "close": state is not SessionState.CLOSED,
            "reconnect": state in _ENDED,
        }
        busy = bool(self._running)
        for action, button in self._buttons.items():
            running = action in self._running
            # Close stays available while a pull or push runs, unless a reconnect
            # is swapping the session.
            blocked = busy and (action != "close" or "reconnect" in self._running)
            button.disabled = not steerable or running or blocked or not allowed[action]
            button.description = _RUNNING_LABELS[action] if running else _LABELS[action]
            button.tooltip = _TOOLTIPS[action] if steerable or session is None else _UNSTEERABLE

    def detach(self) -> None:
        """Stop acting: disable the buttons for good (the owning panel closed)."""
        self._on_action = None
        self._update_buttons()

    def _clicked(self, action: str) -> None:
        if self._on_action is not None:
            self._on_action(self, action)

    # -- display -------------------------------------------------------------------------

    def _fallback(self) -> tuple[str, str]:
        session = self._session
        name = self._names[0] if self._names else None
        if session is not None:
            rendered = render_status(session, name)
            return rendered.text, rendered.html
        text = f"Bokeh session {short_id(self._status.session_id)}: {self._status.state.value}"
        return text, f"<p>{html.escape(text)}</p>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, plus a text and HTML summary for front ends without widgets."""
        bundle: dict[str, Any] = dict(super()._repr_mimebundle_(**kwargs) or {})
        text, markup = self._fallback()
        bundle["text/plain"] = redact(text)
        bundle["text/html"] = redact(markup)
        return bundle


# -- which sessions the kernel has ------------------------------------------------------


def kernel_sessions(known: Mapping[int, ClientSession] | None = None) -> list[SessionRow]:
    """The open sessions of this kernel, oldest first, with their names and kinds.

    Names come from the magics' registry and the notebook namespace. A session
    that is bound to no name is listed as kind "-", unless it is one of the
    ``ClientSession`` objects in ``known`` (by ``id`` of its AsyncClientSession).
    """
    from . import registry

    pairs: list[tuple[str, Steerable]] = list(registry.items())
    shell = get_ipython()
    if shell is not None:
        pairs += [
            (name, value)
            for name, value in list(shell.user_ns.items())
            if not name.startswith("_") and isinstance(value, ClientSession | AsyncClientSession)
        ]
    wrappers: dict[int, ClientSession] = dict(known or {})
    names: dict[int, tuple[str, ...]] = {}
    for name, session in pairs:
        inner = session.async_session if isinstance(session, ClientSession) else session
        if isinstance(session, ClientSession):
            wrappers[id(inner)] = session
        labels = names.get(id(inner), ())
        if name not in labels:
            names[id(inner)] = (*labels, name)
    rows: list[SessionRow] = []
    for inner in live_sessions():
        wrapper = wrappers.get(id(inner))
        labels = names.get(id(inner), ())
        if wrapper is not None:
            rows.append(SessionRow(wrapper, labels, "sync"))
        else:
            rows.append(SessionRow(inner, labels, "async" if labels else "-"))
    return rows


def _closed(row: SessionRowView) -> bool:
    """Whether the row's session is closed now (its latest snapshot may not be shown yet)."""
    session = row.session
    status = session.status if session is not None else row.status
    return status.state is SessionState.CLOSED


def _kind_of(session: Steerable) -> RowKind:
    return "sync" if isinstance(session, ClientSession) else "async"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# -- the panel ---------------------------------------------------------------------------


class StatusPanel(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The sessions of this kernel, live, with actions; and a browser of Bokeh servers.

    Create it in a cell (``StatusPanel()``) or with ``%bokeh_sessions``; see the
    module docstring for what it shows and how it stays live. Construct and use it
    on the kernel's thread. A panel follows its sessions until :meth:`close` (it is
    subscribed to them and, with ``include_kernel_sessions``, to the end of every
    cell); the sessions themselves stay open when it closes.

    Args:
        url: the server URL to offer in the browser (default: the extension's
            ``BokehClient.default_url`` when loaded).
        loop: the loop that owns the widgets (default: the running loop, the
            kernel's in a cell). Without one the panel is static: it shows what
            :meth:`refresh` and :meth:`render` give it, and its buttons are
            disabled.
        interval: the least time between two live updates, in seconds.
        include_kernel_sessions: list the kernel's sessions now, and again after
            every cell (a local scan, no network); False for a panel that shows only
            what :meth:`track` and :meth:`render` give it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        interval: float = DEFAULT_INTERVAL,
        include_kernel_sessions: bool = True,
    ) -> None:
        from . import current_config

        self._loop = loop if loop is not None else _running_loop()
        self._thread_id = threading.get_ident()
        self._rows: list[SessionRowView] = []
        self._known: dict[int, ClientSession] = {}
        self._unsubscribe: dict[int, Callable[[], None]] = {}  # by id(row)
        self._tasks: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Future[None]] = set()
        self._closed = False
        self._shown: tuple[str, str] | None = None  # (app_url, session_id) in the view area
        self._listing: ServerListing | None = None
        self._include_kernel = include_kernel_sessions
        self._throttle: (
            StatusThrottle[SessionRowView, tuple[AsyncClientSession | None, SessionStatus]] | None
        ) = StatusThrottle(self._loop, self._apply, interval) if self._loop is not None else None

        self._header = widgets.HTML()
        self._refresh_button = widgets.Button(
            description="Refresh",
            tooltip="List the kernel's sessions again (drops closed ones)",
            layout=widgets.Layout(width="auto"),
        )
        self._refresh_button.on_click(lambda _button: self._on_thread(self.refresh))
        self._rows_box = widgets.VBox()
        self._rows_box.add_class("bnc-panel-rows")

        config = current_config()
        default_url = url if url is not None else (str(config.default_url) if config else "")
        self._url_text = widgets.Text(
            value=redact(default_url),
            placeholder="http://localhost:5006",
            description="Server",
            layout=widgets.Layout(width="28em"),
        )
        self._url_text.add_class("bnc-browse-url")
        self._list_button = widgets.Button(
            description="List apps",
            tooltip="List the apps of this Bokeh server (its index page and /<app>/metadata)",
            layout=widgets.Layout(width="auto"),
        )
        self._list_button.add_class("bnc-browse-list")
        self._list_button.on_click(lambda _button: self._on_thread(self._start_listing))
        self._session_text = widgets.Text(
            placeholder="empty: a new session; or the id of an existing one to attach to",
            description="Session id",
            layout=widgets.Layout(width="40em"),
        )
        self._session_text.add_class("bnc-browse-session-id")
        self._browse_message = widgets.HTML()
        self._browse_message.add_class("bnc-browse-message")
        self._apps_box = widgets.VBox()
        self._apps_box.add_class("bnc-browse-apps")
        self._app_buttons: dict[str, widgets.Button] = {}
        browser = widgets.VBox(
            [
                widgets.HTML("<b>Browse a Bokeh server</b>"),
                widgets.HBox([self._url_text, self._list_button]),
                self._session_text,
                self._browse_message,
                self._apps_box,
            ],
            layout=widgets.Layout(border="1px solid #ddd", padding="2px 6px", margin="4px 0"),
        )
        browser.add_class("bnc-browse")
        self._views = widgets.Output()
        self._views.add_class("bnc-panel-views")

        super().__init__(
            children=[
                widgets.HBox([self._header, self._refresh_button]),
                self._rows_box,
                browser,
                self._views,
            ]
        )
        self.add_class("bnc-status-panel")
        self._hooked: Callable[..., None] | None = None
        if include_kernel_sessions:
            self.refresh()
            self._hook_cells()
        self._update_header()

    # -- public API --------------------------------------------------------------------

    @property
    def rows(self) -> tuple[SessionRowView, ...]:
        """The rows, in display order."""
        return tuple(self._rows)

    @property
    def listing(self) -> ServerListing | None:
        """The apps of the last server browsed successfully, if any."""
        return self._listing

    @property
    def app_buttons(self) -> Mapping[str, widgets.Button]:
        """The Pull button of each listed app, by app name."""
        return dict(self._app_buttons)

    @property
    def url_text(self) -> widgets.Text:
        """The server URL field of the browser."""
        return self._url_text

    @property
    def session_id_text(self) -> widgets.Text:
        """The session id field of the browser (empty: open new sessions)."""
        return self._session_text

    @property
    def list_button(self) -> widgets.Button:
        """The browser's "List apps" button."""
        return self._list_button

    @property
    def browse_message(self) -> widgets.HTML:
        """What the browser has to say (errors of unreachable or non-Bokeh URLs)."""
        return self._browse_message

    @property
    def views(self) -> widgets.Output:
        """Where Show puts a session's live view."""
        return self._views

    def render(self, status: SessionStatus) -> None:
        """Show ``status`` in the row of its session (a new, render-only row if none).

        Kernel thread only. Rows of tracked sessions render their snapshots by
        themselves; this is for snapshots from elsewhere.
        """
        for row in self._rows:
            shown = row.status
            if (shown.session_id, shown.url) == (status.session_id, status.url):
                row.render(status)
                return
        self._add_row(SessionRowView(status))

    def track(self, session: Steerable, name: str | None = None) -> SessionRowView:
        """The row of ``session``, added (and followed live) if the panel lacks one.

        Args:
            session: a ClientSession or an AsyncClientSession.
            name: a name to show for it (added to the names it already has).
        """
        if not isinstance(session, ClientSession | AsyncClientSession):
            raise TypeError(f"expected a session, got {type(session).__name__}")
        if isinstance(session, ClientSession):
            self._known[id(session.async_session)] = session
        row = self.row_for(session)
        if row is None:
            names = (name,) if name else ()
            row = self._new_row(session, names, _kind_of(session))
            self._add_row(row)
        else:
            if isinstance(session, ClientSession) and row.session is not session:
                row.point_at(session, kind="sync")
            if name and name not in row.names:
                row.set_names((*row.names, name), kind=_kind_of(session))
        self._update_header()
        return row

    def row_for(self, session: object) -> SessionRowView | None:
        """The row of ``session`` (a ClientSession or its AsyncClientSession), or None."""
        inner = session.async_session if isinstance(session, ClientSession) else session
        return next((row for row in self._rows if row.inner is inner), None)

    def refresh(self) -> None:
        """List the kernel's sessions again: add new ones, update names, drop closed ones.

        Without ``include_kernel_sessions`` only the rows the panel has are updated
        (and closed ones dropped).
        """
        if self._closed:
            return
        wanted = kernel_sessions(self._known) if self._include_kernel else []
        keep: list[SessionRowView] = []
        for entry in wanted:
            session = entry.session
            assert isinstance(session, ClientSession | AsyncClientSession)
            row = self.row_for(session)
            if row is None:
                row = self._new_row(session, entry.names, entry.kind)
            else:
                if isinstance(session, ClientSession) and row.session is not session:
                    row.point_at(session, kind="sync")
                row.set_names(entry.names or row.names, kind=entry.kind)
                row.render(session.status)  # the latest, even if the throttle holds it
            keep.append(row)
        for row in self._rows:
            if row not in keep:
                if row.session is None or _closed(row):
                    self._drop_row(row)
                else:
                    keep.append(row)  # tracked but listed nowhere: keep following it
        self._rows = keep
        self._rows_box.children = tuple(keep)
        self._update_header()

    def browse(self, url: str | None = None) -> None:
        """List the apps of the server at ``url`` (default: the URL field), as the button does.

        Returns at once; the listing runs in a worker thread. ``await
        panel.settled()`` waits for it.
        """
        if url is not None:
            self._url_text.value = url
        self._start_listing()

    def open_session(self, app: str, session_id: str | None = None) -> None:
        """Open a session on a listed app (by name) or an app URL, as its Pull button does.

        Returns at once; ``await panel.settled()`` waits for the session.
        """
        if session_id is not None:
            self._session_text.value = session_id
        listed = {info.name: info for info in (self._listing.apps if self._listing else ())}
        info = listed.get(app) or AppInfo(name=_app_name(app), url=app)
        self._start_open(info)

    async def settled(self) -> None:
        """Wait until every action and listing started so far has finished; show the result.

        Pending status snapshots are applied at once rather than at the next tick.
        """
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.wait(pending)
        if self._throttle is not None:
            self._throttle.flush()

    def close(self) -> None:
        """Stop following the sessions, cancel running actions, close the widgets.

        Sessions stay open. Idempotent.
        """
        if getattr(self, "_closed", True):
            super().close()
            return
        self._closed = True
        self._unhook_cells()
        if self._throttle is not None:
            self._throttle.close()
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for task in list(self._tasks):
                task.cancel()
        for row in self._rows:
            # Rows may be displayed elsewhere (%bokeh_pull): keep them, showing the
            # sessions' last state, with their buttons disabled.
            session = row.session
            if session is not None:
                row.render(session.status)
            row.detach()
        _close_tree(self, keep=self._rows_box)
        super().close()

    # -- display -----------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, plus the ``%bokeh_sessions`` table for front ends without widgets."""
        bundle: dict[str, Any] = dict(super()._repr_mimebundle_(**kwargs) or {})
        rows: list[SessionRow] = []
        for row in self._rows:
            session = row.session
            if session is not None and not _closed(row):
                rows.append(SessionRow(session, row.names, row.kind))
        rendered = render_sessions(rows)
        bundle["text/plain"] = redact(rendered.text)
        bundle["text/html"] = redact(rendered.html)
        return bundle

    # -- rows --------------------------------------------------------------------------

    def _new_row(self, session: Steerable, names: Sequence[str], kind: RowKind) -> SessionRowView:
        row = SessionRowView(
            session.status,
            session=session,
            names=names,
            kind=kind,
            on_action=self._action_clicked if self._loop is not None else None,
        )
        self._subscribe(row, session)
        return row

    def _subscribe(self, row: SessionRowView, session: Steerable) -> None:
        throttle = self._throttle
        if throttle is None:
            return
        inner = session.async_session if isinstance(session, ClientSession) else session

        def on_status(status: SessionStatus) -> None:
            # The session's I/O thread: record only; _apply runs on the kernel loop.
            throttle.post(row, (inner, status))

        previous = self._unsubscribe.pop(id(row), None)
        if previous is not None:
            previous()
        self._unsubscribe[id(row)] = session.subscribe(on_status)
        # A change between creating the row and subscribing is not lost.
        on_status(session.status)

    def _add_row(self, row: SessionRowView) -> None:
        self._rows.append(row)
        self._rows_box.children = (*self._rows_box.children, row)
        self._update_header()

    def _drop_row(self, row: SessionRowView) -> None:
        unsubscribe = self._unsubscribe.pop(id(row), None)
        if unsubscribe is not None:
            unsubscribe()
        inner = row.inner
        if inner is not None:
            self._known.pop(id(inner), None)

    def _apply(
        self, pending: dict[SessionRowView, tuple[AsyncClientSession | None, SessionStatus]]
    ) -> None:
        """Throttle callback (kernel loop): show the latest snapshot of each row."""
        for row, (inner, status) in pending.items():
            if self._closed or row.inner is not inner:
                continue  # a snapshot of a session the row no longer shows
            try:
                row.render(status)
            except Exception:
                log.exception("the status panel could not show a status update")
            if (
                status.state is SessionState.CLOSED
                and self._shown is not None
                and self._shown[1] == status.session_id
            ):
                self._show_closed()
        self._update_header()

    def _update_header(self) -> None:
        if not hasattr(self, "_header"):
            return
        open_rows = [r for r in self._rows if not _closed(r)]
        text = (
            f"<b>Bokeh sessions</b> ({len(open_rows)} open)"
            if self._rows
            else "<b>Bokeh sessions</b>: no open Bokeh sessions in this kernel"
        )
        if self._loop is None:
            text += " <i>(static: no running event loop)</i>"
        self._header.value = text

    # -- threads and tasks -----------------------------------------------------------------

    def _on_thread(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the kernel thread: now if this is it, else via the loop."""
        if threading.get_ident() == self._thread_id or self._loop is None:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task owned by the panel (cancelled by :meth:`close`)."""
        loop = self._loop
        if loop is None or self._closed:
            coro.close()
            return
        task = loop.create_task(coro, name=f"bokeh-nb-client panel {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drive(
        self, session: Steerable, operation: Callable[[AsyncClientSession], Coroutine[Any, Any, T]]
    ) -> T:
        """Run ``operation(async session)`` on the loop that hosts the session; await it here."""
        if isinstance(session, ClientSession):
            future = get_engine().submit(operation(session.async_session))
            return await asyncio.wrap_future(future)
        return await operation(session)

    # -- row actions ---------------------------------------------------------------------

    def _action_clicked(self, row: SessionRowView, action: str) -> None:
        self._on_thread(lambda: self._start_action(row, action))

    def _start_action(self, row: SessionRowView, action: str) -> None:
        if self._closed or action in row.running or row.session is None:
            return
        row.set_running(action, True)
        row.say("")
        self._spawn(self._run_action(row, action), f"{action} {short_id(row.status.session_id)}")

    async def _run_action(self, row: SessionRowView, action: str) -> None:
        session = row.session
        assert session is not None
        try:
            match action:
                case "pull":
                    await self._drive(session, lambda s: s.pull())
                case "push":
                    await self._drive(session, lambda s: s.push())
                case "show":
                    await self._show(session)
                case "close":
                    await self._close_session(session)
                case "reconnect":
                    await self._reconnect(row, session)
                case _:
                    raise ValueError(f"unknown action {action!r}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by _log_failure
            _log_failure(f"{action} of session {short_id(session.id)}", exc)
            row.say(f"{action} failed at {_now()}: {type(exc).__name__}: {exc}", error=True)
        else:
            row.say(f"{_DONE[action]} at {_now()}")
        finally:
            row.set_running(action, False)
            self._refresh_row(row)

    def _refresh_row(self, row: SessionRowView) -> None:
        """Re-render a row from its session now (e.g. the Push button after a pull)."""
        session = row.session
        if session is not None and not self._closed:
            row.render(session.status)

    async def _show(self, session: Steerable) -> None:
        from . import current_config

        # The browser pulls the document from the server: send local changes first.
        await self._drive(session, lambda s: s.force_roundtrip())
        config = current_config()
        timeout = float(config.view_load_timeout) if config is not None else 15.0
        # The same route as %bokeh_show's views (direct, or the Jupyter server's proxy).
        route = _view_route(session.app_url)
        view = inline_view(session.app_url, session.id, load_timeout=timeout, route=route)
        self._set_view(view.text, view.html)
        self._shown = (session.app_url, session.id)

    def _show_closed(self) -> None:
        if self._shown is not None:
            view = closed_view(*self._shown)
            self._set_view(view.text, view.html)
            self._shown = None

    def _set_view(self, text: str, markup: str) -> None:
        # Set the outputs directly rather than `with output: display(...)`: that
        # routes by the parent message, which a task started by a click does not have.
        self._views.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/plain": text, "text/html": markup},
                "metadata": {},
            },
        )

    async def _close_session(self, session: Steerable) -> None:
        from . import registry

        await self._drive(session, lambda s: s.close())
        if isinstance(session, ClientSession):
            registry.forget_session(session)
        mark_views_closed(session.app_url, session.id)
        if self._shown is not None and self._shown[1] == session.id:
            self._show_closed()

    async def _reconnect(self, row: SessionRowView, old: Steerable) -> None:
        """Open ``old``'s server session again with a new session object (module docstring)."""
        websocket_url = urls.websocket_url_for_server_url(old.app_url)
        options = _session_options()
        new: Steerable
        if isinstance(old, ClientSession):
            new = ClientSession(old.id, websocket_url, arguments=old.arguments, **options)
        else:
            new = AsyncClientSession(old.id, websocket_url, arguments=old.arguments, **options)
        await self._open_or_discard(new)
        self._known.pop(id(row.inner), None)
        if isinstance(new, ClientSession):
            self._known[id(new.async_session)] = new
        row.point_at(new, kind=_kind_of(new))
        self._subscribe(row, new)
        _rebind(old, new)
        # The old session's connection is over; closing it detaches its document.
        await self._drive(old, lambda s: s.close())

    async def _open_or_discard(self, session: Steerable) -> None:
        """Pull ``session``; close it again if that fails (or is cancelled)."""
        try:
            await self._drive(session, lambda s: s.pull())
        except asyncio.CancelledError:
            self._discard(session)
            raise
        except Exception:
            await self._drive(session, lambda s: s.close())
            raise

    def _discard(self, session: Steerable) -> None:
        """Close ``session`` in the background while this task is being cancelled."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if isinstance(session, ClientSession):
            cleanup: asyncio.Future[None] = asyncio.wrap_future(
                get_engine().submit(session.async_session.close()), loop=loop
            )
        else:
            cleanup = loop.create_task(session.close())
        # Owned until done, so that it is neither collected nor lost.
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)

    # -- browsing ------------------------------------------------------------------------

    def _start_listing(self) -> None:
        if self._closed:
            return
        try:
            url = normalize_server_url(self._url_text.value)
        except ValueError as exc:
            self._say_browse(str(exc), error=True)
            return
        self._url_text.value = url  # credentials typed into the URL leave the widget state
        self._list_button.disabled = True
        self._list_button.description = "Listing…"
        self._say_browse(f"listing the apps of {url} …")
        self._spawn(self._list(url), f"list {url}")

    async def _list(self, url: str) -> None:
        try:
            listing = await asyncio.to_thread(list_apps, url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by _log_failure
            _log_failure(f"listing the apps of {url}", exc)
            self._listing = None
            self._show_apps(())
            self._say_browse(_browse_failure(url, exc), error=True)
        else:
            self._listing = listing
            self._show_apps(listing.apps)
            count = len(listing.apps)
            self._say_browse(
                f"{count} app{'s' if count != 1 else ''} at {listing.url} ({listing.note})"
            )
        finally:
            self._list_button.disabled = False
            self._list_button.description = "List apps"

    def _show_apps(self, apps: Sequence[AppInfo]) -> None:
        self._app_buttons = {}
        lines = []
        for info in apps:
            button = widgets.Button(
                description="Pull",
                tooltip=f"Open a session of {info.name} and pull its document "
                "(the session id above, if given, is joined instead of a new one)",
                layout=widgets.Layout(width="auto"),
            )
            button.add_class("bnc-browse-pull")
            button.on_click(
                lambda _button, info=info: self._on_thread(lambda: self._start_open(info))
            )
            self._app_buttons[info.name] = button
            metadata = json.dumps(dict(info.metadata))[:200] if info.metadata else ""
            label = widgets.HTML(
                f'<span class="bnc-app-name"><b>{_esc(info.name)}</b></span> '
                f'<span style="color:#555">{_esc(info.url)}</span>'
                + (f' <code title="app metadata">{_esc(metadata)}</code>' if metadata else "")
            )
            line = widgets.HBox([button, label])
            line.add_class("bnc-browse-app")
            lines.append(line)
        self._apps_box.children = tuple(lines)

    def _start_open(self, info: AppInfo) -> None:
        if self._closed:
            return
        button = self._app_buttons.get(info.name)
        if button is not None:
            if button.disabled:
                return
            button.disabled = True
            button.description = "Pulling…"
        session_id = self._session_text.value.strip() or None
        what = f"session {short_id(session_id)}" if session_id else "a new session"
        self._say_browse(f"opening {what} of {info.name} …")
        self._spawn(self._open(info, session_id), f"open {info.name}")

    async def _open(self, info: AppInfo, session_id: str | None) -> None:
        from . import registry

        try:
            websocket_url = urls.websocket_url_for_server_url(info.url)
            session = ClientSession(session_id, websocket_url, **_session_options())
            await self._open_or_discard(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by _log_failure
            _log_failure(f"opening a session of {info.url}", exc)
            self._say_browse(
                f"could not open a session of {info.name}: {type(exc).__name__}: {exc}",
                error=True,
            )
        else:
            name = _free_name(info.name)
            registry.bind(name, session)
            shell = get_ipython()
            if shell is not None:
                shell.push({name: session})  # type: ignore[no-untyped-call]
            self.track(session, name)
            self._say_browse(
                f"opened {name} = session {short_id(session.id)} of {info.name} at {_now()}"
            )
        finally:
            button = self._app_buttons.get(info.name)
            if button is not None:
                button.disabled = False
                button.description = "Pull"

    def _say_browse(self, text: str, *, error: bool = False) -> None:
        colour = "#c62828" if error else "#555"
        kind = "error" if error else "info"
        self._browse_message.value = (
            f'<span class="bnc-browse-note" data-kind="{kind}" style="color:{colour}">'
            f"{_esc(text)}</span>"
        )

    # -- keeping the list current ------------------------------------------------------------

    def _hook_cells(self) -> None:
        """Refresh after every cell (a local scan), so sessions opened in code appear."""
        shell = get_ipython()
        if shell is None or self._loop is None:
            return

        def after_cell(*_args: object) -> None:
            self.refresh()

        shell.events.register("post_run_cell", after_cell)  # type: ignore[no-untyped-call]
        self._hooked = after_cell

    def _unhook_cells(self) -> None:
        hooked, self._hooked = self._hooked, None
        shell = get_ipython()
        if hooked is not None and shell is not None:
            with contextlib.suppress(ValueError):  # already unregistered
                shell.events.unregister("post_run_cell", hooked)  # type: ignore[no-untyped-call]


# -- helpers -------------------------------------------------------------------------------


def _close_tree(widget: widgets.Widget, *, keep: widgets.Widget) -> None:
    """Close the descendants of ``widget`` except ``keep`` and what is inside it."""
    for child in getattr(widget, "children", ()):
        if child is not keep:
            _close_tree(child, keep=keep)
            child.close()


def _log_failure(what: str, exc: Exception) -> None:
    """Log a failed action: INFO when the server, the network or the input failed
    (the panel already shows it), ERROR with the traceback for anything else (a bug).
    """
    expected = isinstance(exc, BokehClientError | ValueError | OSError)
    log.log(
        logging.INFO if expected else logging.ERROR,
        "status panel: %s failed: %s",
        what,
        redact(str(exc)),
        exc_info=exc,
    )


def _session_options() -> dict[str, Any]:
    """Options for sessions the panel opens: the extension's configuration, if loaded."""
    from . import current_config

    config = current_config()
    return config.session_options() if config is not None else {}


def _browse_failure(url: str, exc: Exception) -> str:
    from ..exceptions import ConnectError, RemoteProtocolError, Timeout

    if isinstance(exc, Timeout):
        return f"no answer from {url} within {exc.seconds:g} s: is it a Bokeh server?"
    if isinstance(exc, ConnectError):
        return f"{exc}"
    if isinstance(exc, RemoteProtocolError):
        return f"{exc}"
    return f"cannot list the apps of {url}: {type(exc).__name__}: {exc}"


def _app_name(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or "app"


def _free_name(app: str) -> str:
    """A variable name for a session of ``app`` bound nowhere yet: ``basic``, ``basic_2``..."""
    from . import registry

    base = re.sub(r"\W", "_", app).strip("_") or "app"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = f"app_{base}"
    shell = get_ipython()
    taken = set(shell.user_ns) if shell is not None else set()
    candidate, number = base, 1
    while candidate in registry or candidate in taken:
        number += 1
        candidate = f"{base}_{number}"
    return candidate


def _rebind(old: Steerable, new: Steerable) -> None:
    """Point every name bound to ``old`` (registry and namespace) at ``new``."""
    from . import registry

    if isinstance(old, ClientSession) and isinstance(new, ClientSession):
        for name, session in registry.items():
            if session is old:
                registry.bind(name, new)
    shell = get_ipython()
    if shell is not None:
        names = [name for name, value in list(shell.user_ns.items()) if value is old]
        if names:
            shell.push(dict.fromkeys(names, new))  # type: ignore[no-untyped-call]


_shared: StatusPanel | None = None


def shared_panel() -> StatusPanel:
    """The kernel's panel, shown by ``%bokeh_sessions`` (created on first use)."""
    global _shared
    if _shared is None or _shared._closed:
        _shared = StatusPanel()
    return _shared


def close_shared_panel() -> None:
    """Close the kernel's panel, if there is one (``%unload_ext``)."""
    global _shared
    panel, _shared = _shared, None
    if panel is not None:
        panel.close()
