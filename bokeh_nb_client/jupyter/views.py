"""The live inline views this kernel shows, and how they follow their sessions.

A view is displayed under an IPython display id, and the kernel renders it again
(``update_display``; front ends route it by display id, so views in earlier
cells change too) whenever what it shows must change:

==========================================  =========================================
the view's session ...                      the view ...
==========================================  =========================================
reconnects (``connected`` after             is rendered again with a fresh token
``reconnecting``, ``disconnected`` or       minted by the session (its
``error``; same or recreated server         ``token_expiration``), so a view older
session)                                    than the token lifetime follows too
stops following the server                  says so ("detached"), and its browser
(``disconnected``, ``error``)               connection is closed
is closed (``%bokeh_close``,                says it was closed, and its browser
``session.close()``, ``%unload_ext``)       connection is closed
ends with the kernel (shutdown, restart)    is marked closed from the kernel's exit
==========================================  =========================================

Each new rendering closes the browser connection of the previous one under the
same display id (``static/view.js``), so a page never keeps a connected view
that no longer follows its kernel.

Threads: status snapshots arrive on the session's I/O thread (the engine thread
for a ``ClientSession``); they are handed to the kernel's loop (captured when
the first view is shown, from a cell) with ``call_soon_threadsafe`` and rendered
there, as the status panel does. Without a running loop (plain IPython, tests)
they are rendered on the publishing thread.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .. import _bokeh
from ..session import AsyncClientSession
from ..status import SessionState, SessionStatus
from .display import (
    closed_view,
    detached_view,
    in_kernel,
    inline_view,
    new_display_id,
    view_load_timeout,
    view_route,
)

__all__ = ["LiveViews", "ViewChange", "live_views", "mark_views_closed", "view_change"]

#: States after which a ``connected`` status means "reconnected".
_AWAY = frozenset({SessionState.RECONNECTING, SessionState.DISCONNECTED, SessionState.ERROR})
#: States in which the session does not follow the server.
_DETACHED = frozenset({SessionState.DISCONNECTED, SessionState.ERROR})

#: What a view becomes (see :func:`view_change`).
ViewChange = Literal["live", "detached", "closed"]


def view_change(previous: SessionState | None, state: SessionState) -> ViewChange | None:
    """What a view of a session must become when the session goes from ``previous``
    to ``state`` (the table in the module docstring); None: it stays as it is."""
    if state is SessionState.CLOSED:
        return "closed"
    if state is SessionState.CONNECTED and previous in _AWAY:
        return "live"  # reconnected: render again with a fresh token
    if state in _DETACHED and previous not in _DETACHED:
        return "detached"
    return None


@dataclass
class _Followed:
    """The views of one server session shown in this kernel."""

    app_url: str
    session_id: str
    session: AsyncClientSession | None
    display_ids: list[str] = field(default_factory=list)
    models: dict[str, _bokeh.Model | None] = field(default_factory=dict)
    state: SessionState | None = None
    unsubscribe: Callable[[], None] | None = None


class LiveViews:
    """The views of this kernel, by server session id (see the module docstring).

    Methods other than the status subscriber are meant for the kernel's thread.
    """

    def __init__(self) -> None:
        self._followed: dict[str, _Followed] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._exit_hook = False

    def show(
        self,
        app_url: str,
        session_id: str,
        *,
        session: AsyncClientSession | None = None,
        model: _bokeh.Model | None = None,
    ) -> str:
        """Display a live view of ``session_id`` in the current output; return its display id.

        ``session`` (default: the open session of this process with that id and
        app, if any) is followed: its views change with it.

        Raises:
            ValueError: ``view_url`` is "proxy" but the proxy cannot reach ``app_url``.
        """
        from ._ipython import display
        from .sessions import find_session

        if self._loop is None:
            self._loop = _running_loop()
        if not self._exit_hook and in_kernel():
            # Registered after the engine's own exit hook, so it runs before it.
            atexit.register(self.kernel_exiting)
            self._exit_hook = True
        if session is None:
            session = find_session(app_url, session_id)
        followed = self._followed.get(session_id)
        if followed is None:
            followed = _Followed(app_url, session_id, session)
            self._followed[session_id] = followed
            if session is not None:
                followed.state = session.status.state
                followed.unsubscribe = session.subscribe(
                    lambda status: self._status_arrived(session_id, status)
                )
        display_id = new_display_id()
        followed.display_ids.append(display_id)
        followed.models[display_id] = model
        display(self._live(followed, display_id), display_id=display_id)
        return display_id

    def session_closed(self, app_url: str, session_id: str, *, why: str | None = None) -> None:
        """Replace every view of ``session_id`` by a note that the kernel closed it."""
        followed = self._followed.pop(session_id, None)
        if followed is None:
            return
        if followed.unsubscribe is not None:
            followed.unsubscribe()
        self._render_all(followed, lambda key: closed_view(app_url, session_id, key, why=why))

    def kernel_exiting(self) -> None:
        """Mark every view closed: the kernel is shutting down or restarting."""
        for session_id, followed in list(self._followed.items()):
            self.session_closed(followed.app_url, session_id, why="the kernel shut down")

    def view_ids(self, session_id: str) -> list[str]:
        """The display ids of the views of ``session_id`` shown in this kernel."""
        followed = self._followed.get(session_id)
        return list(followed.display_ids) if followed is not None else []

    # -- following a session -------------------------------------------------------

    def _status_arrived(self, session_id: str, status: SessionStatus) -> None:
        """Status subscriber (the session's I/O thread): render on the kernel's loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._follow, session_id, status)
        elif loop is None:
            self._follow(session_id, status)

    def _follow(self, session_id: str, status: SessionStatus) -> None:
        followed = self._followed.get(session_id)
        if followed is None:
            return
        with self._lock:
            previous, followed.state = followed.state, status.state
        match view_change(previous, status.state):
            case "closed":
                self.session_closed(followed.app_url, session_id)
            case "live":
                self._render_all(followed, None)
            case "detached":
                why = status.last_error or status.state.value
                self._render_all(
                    followed, lambda key: detached_view(followed.app_url, session_id, why, key)
                )
            case None:
                pass

    def _live(self, followed: _Followed, display_id: str) -> object:
        session = followed.session
        token = session.token if session is not None else None
        return inline_view(
            followed.app_url,
            followed.session_id,
            model=followed.models.get(display_id),
            load_timeout=view_load_timeout(),
            route=view_route(followed.app_url),
            token=token,
            key=display_id,
        )

    def _render_all(self, followed: _Followed, notice: Callable[[str], object] | None) -> None:
        """Render every view of ``followed`` again: live (``notice`` None) or as a notice."""
        from ._ipython import update_display

        for display_id in followed.display_ids:
            view = self._live(followed, display_id) if notice is None else notice(display_id)
            update_display(view, display_id=display_id)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_live_views: LiveViews | None = None


def live_views() -> LiveViews:
    """The views of this kernel (one set per process, like the kernel)."""
    global _live_views
    if _live_views is None:
        _live_views = LiveViews()
    return _live_views


def mark_views_closed(app_url: str, session_id: str) -> None:
    """Replace every view of ``session_id`` shown in this kernel by a closed note."""
    live_views().session_closed(app_url, session_id)
