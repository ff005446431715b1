"""Which sessions of this process are open, and their close at interpreter exit.

``session.AsyncClientSession`` registers itself when made; the Jupyter layer lists
``live_sessions()`` (``%bokeh_sessions``, the status panel). The registry holds
sessions weakly: a session nobody references is not kept alive by it.
"""

from __future__ import annotations

import atexit
import logging
import time
import weakref
from typing import TYPE_CHECKING

from .engine import finish_on_stopped_loop
from .status import SessionState

if TYPE_CHECKING:
    from .session import AsyncClientSession

__all__ = ["live_sessions", "register"]

log = logging.getLogger(__name__)

#: session -> when it was made (time.monotonic), for oldest-first listings
_made_at: weakref.WeakKeyDictionary[AsyncClientSession, float] = weakref.WeakKeyDictionary()


def register(session: AsyncClientSession) -> None:
    """Record a new session (called once, by its constructor)."""
    _made_at[session] = time.monotonic()


def live_sessions() -> list[AsyncClientSession]:
    """Every session of this process that has not been closed, oldest first."""
    made = list(_made_at.items())
    made.sort(key=lambda item: item[1])
    return [session for session, _ in made if session.status.state is not SessionState.CLOSED]


def _close_at_exit() -> None:
    """Close, at interpreter exit, async sessions whose loop is stopped but not closed.

    A kernel (or a script that made its own loop) exits without ``close()``: the
    websocket would drop without a close frame, and the server would see an
    abnormal end (code 1006). Sessions of the synchronous API live on the engine
    loop, whose shutdown cancels their readers, which close their sockets. A loop
    that is still running elsewhere or already closed is left alone (nothing may
    run on it from here; the OS closes the sockets).
    """
    for session in live_sessions():
        # The session's own loop, if it is an async session bound to one (the
        # registry is the session's companion: it reads these two private facts).
        loop = session._loop
        if loop is None or not session._docsync.home_is_loop:
            continue  # not bound yet, or a synchronous session (the engine's)
        try:
            finish_on_stopped_loop(loop, session.close("interpreter exit"), 2.0)
        except Exception as exc:  # noqa: BLE001 - at exit there is no caller to raise to
            log.warning("session %s…: not closed cleanly at exit: %r", session.id[:8], exc)


atexit.register(_close_at_exit)
