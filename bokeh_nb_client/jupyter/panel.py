"""``StatusPanel``: a live ipywidgets view of this kernel's Bokeh sessions, with actions.

The panel is a composite of stock ipywidgets (no front-end build):

* one row per session of the kernel (the magics' sessions, sessions bound to
  notebook variables, and every other open session of the process): server and
  app, short session id (the full id on hover), state (with the reason of an
  error), the server's bokeh version, roots and models, messages and bytes in
  and out, the last round-trip time, the last activity and the last error;
  buttons Pull, Push, Show, Close and Reconnect (:mod:`.panel_rows`);
* a browser of Bokeh servers (:mod:`.panel_browser`): enter a URL, list its apps
  (:mod:`bokeh_nb_client.discovery`), and open a session on one of them (a new one, or an existing
  session id to attach to);
* an output area where Show puts the live inline view of a session.

Its parts live in sibling modules: :mod:`.sessions` (which sessions the kernel
has), :mod:`.panel_text` (texts, and the scrubbing of secrets),
:mod:`.panel_throttle` (status updates), :mod:`.panel_rows` (a row),
:mod:`.panel_actions` (what the buttons do) and :mod:`.panel_browser` (the
browser). This module assembles them and keeps the list of rows current.

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

Reconnect calls the session's own ``reconnect()`` (``AsyncClientSession.reconnect``,
on the engine loop for a ``ClientSession``): the same session object opens a new
connection to its server session (same id, URL, query arguments and options) and
re-pulls or re-pushes its document as its reconnect policy (without one, the
``"auto"`` rule of :mod:`bokeh_nb_client.reconnect`) says. The row, the magics'
registry and every name bound to the session keep referring to it.

Secrets: session snapshots carry no token, key or cookie, and every text the
panel shows (URLs, errors, messages) is also scrubbed of ``user:password@``
parts, Bokeh tokens and the configured secret key (:func:`redact`), so none
reaches widget state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..client import ClientSession
from ..discovery import ServerListing
from ..session import AsyncClientSession
from ..status import SessionStatus
from ._ipython import get_ipython
from .panel_actions import OwnedTasks, ViewArea, run_action
from .panel_browser import ServerBrowser
from .panel_rows import ACTIONS, SessionRowView, row_closed
from .panel_text import redact
from .panel_throttle import DEFAULT_INTERVAL, StatusThrottle
from .rendering import SessionRow, render_sessions, short_id
from .sessions import RowKind, Steerable, kernel_sessions, kind_of

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

#: What the throttle carries for a row: the session the snapshot is of, and the snapshot.
_Update = tuple[AsyncClientSession | None, SessionStatus]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
        self._loop = loop if loop is not None else _running_loop()
        self._tasks = OwnedTasks(self._loop)
        self._rows: list[SessionRowView] = []
        self._known: dict[int, ClientSession] = {}
        self._unsubscribe: dict[int, Callable[[], None]] = {}  # by id(row)
        self._closed = False
        self._include_kernel = include_kernel_sessions
        self._throttle: StatusThrottle[SessionRowView, _Update] | None = (
            StatusThrottle(self._loop, self._apply, interval) if self._loop is not None else None
        )

        self._header = widgets.HTML()
        self._refresh_button = widgets.Button(
            description="Refresh",
            tooltip="List the kernel's sessions again (drops closed ones)",
            layout=widgets.Layout(width="auto"),
        )
        self._refresh_button.on_click(lambda _button: self._tasks.on_thread(self.refresh))
        self._rows_box = widgets.VBox()
        self._rows_box.add_class("bnc-panel-rows")
        self._browser = ServerBrowser(self._tasks, self.track, url)
        self._views = ViewArea()

        super().__init__(
            children=[
                widgets.HBox([self._header, self._refresh_button]),
                self._rows_box,
                self._browser,
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
        return self._browser.listing

    @property
    def app_buttons(self) -> Mapping[str, widgets.Button]:
        """The Pull button of each listed app, by app name."""
        return self._browser.app_buttons

    @property
    def url_text(self) -> widgets.Text:
        """The server URL field of the browser."""
        return self._browser.url_text

    @property
    def session_id_text(self) -> widgets.Text:
        """The session id field of the browser (empty: open new sessions)."""
        return self._browser.session_id_text

    @property
    def list_button(self) -> widgets.Button:
        """The browser's "List apps" button."""
        return self._browser.list_button

    @property
    def browse_message(self) -> widgets.HTML:
        """What the browser has to say (errors of unreachable or non-Bokeh URLs)."""
        return self._browser.message

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
            row = self._new_row(session, names, kind_of(session))
            self._add_row(row)
        else:
            if isinstance(session, ClientSession) and row.session is not session:
                row.point_at(session, kind="sync")
            if name and name not in row.names:
                row.set_names((*row.names, name), kind=kind_of(session))
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
                if row.session is None or row_closed(row):
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
            self._browser.url_text.value = url
        self._browser.start_listing()

    def open_session(self, app: str, session_id: str | None = None) -> None:
        """Open a session on a listed app (by name) or an app URL, as its Pull button does.

        Returns at once; ``await panel.settled()`` waits for the session.
        """
        self._browser.open_app(app, session_id)

    async def settled(self) -> None:
        """Wait until every action and listing started so far has finished; show the result.

        Pending status snapshots are applied at once rather than at the next tick.
        """
        await self._tasks.settled()
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
        self._views.stop_following()
        self._tasks.close()
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
            if session is not None and not row_closed(row):
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

    def _apply(self, pending: dict[SessionRowView, _Update]) -> None:
        """Throttle callback (kernel loop): show the latest snapshot of each row."""
        for row, (inner, status) in pending.items():
            if self._closed or row.inner is not inner:
                continue  # a snapshot of a session the row no longer shows
            try:
                row.render(status)
            except Exception:
                log.exception("the status panel could not show a status update")
        self._update_header()

    def _update_header(self) -> None:
        if not hasattr(self, "_header"):
            return
        open_rows = [r for r in self._rows if not row_closed(r)]
        text = (
            f"<b>Bokeh sessions</b> ({len(open_rows)} open)"
            if self._rows
            else "<b>Bokeh sessions</b>: no open Bokeh sessions in this kernel"
        )
        if self._loop is None:
            text += " <i>(static: no running event loop)</i>"
        self._header.value = text

    # -- row actions -------------------------------------------------------------------

    def _action_clicked(self, row: SessionRowView, action: str) -> None:
        self._tasks.on_thread(lambda: self._start_action(row, action))

    def _start_action(self, row: SessionRowView, action: str) -> None:
        if self._closed or action in row.running or row.session is None:
            return
        row.set_running(action, True)
        row.say("")
        self._tasks.spawn(
            self._run_action(row, action), f"{action} {short_id(row.status.session_id)}"
        )

    async def _run_action(self, row: SessionRowView, action: str) -> None:
        try:
            await run_action(row, action, self._views)
        finally:
            row.set_running(action, False)
            self._refresh_row(row)

    def _refresh_row(self, row: SessionRowView) -> None:
        """Re-render a row from its session now (e.g. the Push button after a pull)."""
        session = row.session
        if session is not None and not self._closed:
            row.render(session.status)

    # -- keeping the list current ------------------------------------------------------------

    def _hook_cells(self) -> None:
        """Refresh after every cell (a local scan), so sessions opened in code appear."""
        shell = get_ipython()
        if shell is None or self._loop is None:
            return

        def after_cell(*_args: object) -> None:
            self.refresh()

        shell.events.register("post_run_cell", after_cell)
        self._hooked = after_cell

    def _unhook_cells(self) -> None:
        hooked, self._hooked = self._hooked, None
        shell = get_ipython()
        if hooked is not None and shell is not None:
            with contextlib.suppress(ValueError):  # already unregistered
                shell.events.unregister("post_run_cell", hooked)


def _close_tree(widget: widgets.Widget, *, keep: widgets.Widget) -> None:
    """Close the descendants of ``widget`` except ``keep`` and what is inside it."""
    for child in getattr(widget, "children", ()):
        if child is not keep:
            _close_tree(child, keep=keep)
            child.close()


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
