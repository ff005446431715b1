"""What the status panel's buttons do, as tasks the panel owns on the kernel's loop.

* :class:`OwnedTasks` hands clicks to the kernel thread, runs each action as a
  task on the kernel loop that the panel keeps (and cancels when it closes), and
  closes half-opened sessions in the background when such a task is cancelled.
* :func:`drive` runs one of a session's coroutines on the loop that hosts the
  session, and awaits it on the kernel loop: for a ``ClientSession`` the
  coroutine of its ``async_session`` is submitted to the engine loop and awaited
  with ``asyncio.wrap_future``; an ``AsyncClientSession`` lives on the kernel loop
  and is awaited directly. So a click never blocks the kernel, no thread is added,
  the kernel loop stays free to apply a pulled document on its home thread
  (``Home.post``), and cancelling the task cancels the engine's coroutine too.
* :func:`run_action` is one row action (Pull, Push, Show, Close, Reconnect), its
  outcome shown in the row and failures logged; :class:`ViewArea` is where Show
  puts a session's live view.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import ipywidgets as widgets

from ..client import ClientSession
from ..engine import get_engine
from ..exceptions import BokehClientError
from ..session import AsyncClientSession
from ..status import SessionState, SessionStatus
from .display import (
    closed_view,
    detached_view,
    inline_view,
    view_load_timeout,
    view_route,
)
from .panel_rows import SessionRowView
from .panel_text import now, redact
from .rendering import short_id
from .sessions import Steerable, forget_closed
from .views import view_change

__all__ = ["OwnedTasks", "ViewArea", "drive", "log_failure", "run_action"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What the row says after an action succeeded ("<done> at <time>").
_DONE = {
    "pull": "pulled",
    "push": "pushed",
    "show": "shown below the panel",
    "close": "closed",
    "reconnect": "reconnected",
}


async def drive(
    session: Steerable, operation: Callable[[AsyncClientSession], Coroutine[Any, Any, T]]
) -> T:
    """Run ``operation(async session)`` on the loop that hosts the session; await it here."""
    if isinstance(session, ClientSession):
        future = get_engine().submit(operation(session.async_session))
        return await asyncio.wrap_future(future)
    return await operation(session)


def log_failure(what: str, exc: Exception) -> None:
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


class OwnedTasks:
    """The panel's tasks on the kernel loop, and the hop of clicks to the kernel thread.

    Every task is kept in a set until it is done and cancelled by :meth:`close`;
    none is fire-and-forget.

    Args:
        loop: the kernel's loop, or None for a static panel (nothing runs).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._thread_id = threading.get_ident()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Future[None]] = set()
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the tasks run on (None: a static panel)."""
        return self._loop

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: no new task starts."""
        return self._closed

    def on_thread(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the kernel thread: now if this is it, else via the loop."""
        if threading.get_ident() == self._thread_id or self._loop is None:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as an owned task (cancelled by :meth:`close`)."""
        loop = self._loop
        if loop is None or self._closed:
            coro.close()
            return
        task = loop.create_task(coro, name=f"bokeh-nb-client panel {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until every task started so far has finished."""
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.wait(pending)

    def close_in_background(self, session: Steerable) -> None:
        """Close ``session`` in the background (while the task that opened it is cancelled)."""
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

    def close(self) -> None:
        """Start no more tasks; cancel the running ones. Idempotent."""
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for task in list(self._tasks):
                task.cancel()


class ViewArea(widgets.Output):  # type: ignore[misc]  # ipywidgets is untyped
    """Where Show puts the live inline view of a session (one at a time).

    The view follows its session as ``%bokeh_show``'s views do (``views.view_change``):
    rendered again with a fresh token when the session reconnects, a notice when it
    stops following the server or is closed. Methods are for the kernel's loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_class("bnc-panel-views")
        self._shown: tuple[str, str] | None = None  # (app_url, session_id) in the view
        self._key = f"panel-{id(self):x}"  # a new rendering replaces the previous one
        self._state: SessionState | None = None  # the shown session's, as last seen
        self._unsubscribe: Callable[[], None] | None = None

    async def show(self, session: Steerable) -> None:
        """Show a live view of ``session`` (its local changes are sent first)."""
        # The browser pulls the document from the server: send local changes first.
        await drive(session, lambda s: s.force_roundtrip())
        self._render_live(session)
        self._follow(session, asyncio.get_running_loop())

    def session_closed(self, session_id: str) -> None:
        """Say so in the view if it shows the session ``session_id``."""
        if self._shown is not None and self._shown[1] == session_id:
            view = closed_view(*self._shown, key=self._key)
            self._set(view.text, view.html)
            self._shown = None
            self.stop_following()

    def stop_following(self) -> None:
        """Stop following the shown session's status (the panel closes). Idempotent."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _render_live(self, session: Steerable) -> None:
        view = inline_view(
            session.app_url,
            session.id,
            load_timeout=view_load_timeout(),
            # The same route as %bokeh_show's views (direct, or the Jupyter server's proxy).
            route=view_route(session.app_url),
            token=session.token,  # minted now, with the session's token_expiration
            key=self._key,
        )
        self._set(view.text, view.html)
        self._shown = (session.app_url, session.id)

    def _follow(self, session: Steerable, loop: asyncio.AbstractEventLoop) -> None:
        self.stop_following()
        self._state = session.status.state

        def arrived(status: SessionStatus) -> None:  # the session's I/O thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._status_arrived, session, status)

        self._unsubscribe = session.subscribe(arrived)

    def _status_arrived(self, session: Steerable, status: SessionStatus) -> None:
        if self._shown is None or self._shown[1] != session.id:
            return  # a snapshot of a session this area no longer shows
        previous, self._state = self._state, status.state
        match view_change(previous, status.state):
            case "live":
                self._render_live(session)
            case "detached":
                why = status.last_error or status.state.value
                view = detached_view(*self._shown, why, key=self._key)
                self._set(view.text, view.html)
            case "closed":
                self.session_closed(session.id)
            case None:
                pass

    def _set(self, text: str, markup: str) -> None:
        # Set the outputs directly rather than `with output: display(...)`: that
        # routes by the parent message, which a task started by a click does not have.
        self.outputs = (
            {
                "output_type": "display_data",
                "data": {"text/plain": text, "text/html": markup},
                "metadata": {},
            },
        )


async def run_action(row: SessionRowView, action: str, views: ViewArea) -> None:
    """Run ``action`` on the row's session; say how it went in the row.

    A failure is shown in the row and logged (:func:`log_failure`), not raised;
    cancellation is.
    """
    session = row.session
    assert session is not None
    try:
        match action:
            case "pull":
                await drive(session, lambda s: s.pull())
            case "push":
                await drive(session, lambda s: s.push())
            case "show":
                await views.show(session)
            case "close":
                await _close_session(session, views)
            case "reconnect":
                # The same session object reopens its server session and resyncs
                # its document; every name bound to it stays valid.
                await drive(session, lambda s: s.reconnect())
            case _:
                raise ValueError(f"unknown action {action!r}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by log_failure
        log_failure(f"{action} of session {short_id(session.id)}", exc)
        row.say(f"{action} failed at {now()}: {type(exc).__name__}: {exc}", error=True)
    else:
        row.say(f"{_DONE[action]} at {now()}")


async def _close_session(session: Steerable, views: ViewArea) -> None:
    await drive(session, lambda s: s.close())
    forget_closed(session)
    views.session_closed(session.id)
