"""The lifecycle of a session: one state machine, every guard asks it.

Pure: no I/O, no asyncio, no bokeh. ``AsyncClientSession`` holds one
``Lifecycle`` and moves it at each step of its life; whether it may send, must
wait for a reconnect, or is over is read from the phase, never from flags kept
beside it. The published ``SessionState`` (status.py) is what a user sees; the
phase is what the code decides on.

Transitions (anything else is a bug in this package and raises)::

    NEW ─────────► CONNECTING ──► CONNECTED ◄───────► RECONNECTING
     │              │   ▲           │                   │
     │              ▼   │           ▼                   ▼
     │             NEW / FAILED ◄───┴───────────────────┘  (FAILED ─► RECONNECTING
     │                                                       by reconnect())
     └──────────► CLOSING ──► CLOSED   (from every phase but CLOSED)

* CONNECTING ─► NEW: the first connect was interrupted (cancelled, Ctrl-C); a
  later call connects again.
* CONNECTING ─► FAILED: the first connect failed; a later call tries again.
* CONNECTED ─► RECONNECTING: the connection dropped and a reconnect policy is set.
* CONNECTED ─► FAILED: the connection dropped with no policy, or for good.
* RECONNECTING ─► FAILED: the policy gave up (or a manual reconnect failed).
"""

from __future__ import annotations

import enum

from .exceptions import SessionStateError

__all__ = ["Lifecycle", "Phase"]


class Phase(enum.Enum):
    """Where a session is in its life."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


NEW, CONNECTING, CONNECTED, RECONNECTING, FAILED, CLOSING, CLOSED = Phase

_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    NEW: frozenset({CONNECTING, CLOSING}),
    CONNECTING: frozenset({CONNECTED, NEW, FAILED, CLOSING}),
    CONNECTED: frozenset({RECONNECTING, FAILED, CLOSING}),
    RECONNECTING: frozenset({CONNECTED, FAILED, CLOSING}),
    FAILED: frozenset({CONNECTING, RECONNECTING, CLOSING}),
    CLOSING: frozenset({CLOSED}),
    CLOSED: frozenset(),
}


class Lifecycle:
    """The phase of one session and the only way to change it."""

    def __init__(self) -> None:
        self._phase = NEW

    @property
    def phase(self) -> Phase:
        """The current phase."""
        return self._phase

    def move(self, to: Phase) -> None:
        """Enter ``to``; a move to the current phase is a no-op.

        Raises:
            SessionStateError: the table does not allow the move (a bug here).
        """
        if to is self._phase:
            return
        if to not in _TRANSITIONS[self._phase]:
            raise SessionStateError(
                f"internal error: a session cannot go from {self._phase.value} to {to.value}"
            )
        self._phase = to

    # -- guards -------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """``close()`` was called (closing or closed): nothing may start any more."""
        return self._phase in (CLOSING, CLOSED)

    @property
    def opening(self) -> bool:
        """A connect or reconnect is opening a connection; it sees failures itself."""
        return self._phase in (CONNECTING, RECONNECTING)

    @property
    def reconnecting(self) -> bool:
        """A reconnect is under way: requests wait for it (for a grace period)."""
        return self._phase is RECONNECTING

    @property
    def over(self) -> bool:
        """The session will not send again unless reconnected: closed or failed."""
        return self._phase in (FAILED, CLOSING, CLOSED)
