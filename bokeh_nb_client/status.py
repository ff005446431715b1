"""Session status: a frozen snapshot of what a session is doing, and its subscribers.

Pure: no I/O, no asyncio, no bokeh. A session publishes a new ``SessionStatus``
on every state change; views (the status panel, ``%bokeh_sessions``) render
snapshots and never store state of their own. Snapshots never carry tokens,
secret keys or cookies.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["SessionState", "SessionStatus", "StatusPublisher"]

log = logging.getLogger(__name__)


class SessionState(enum.Enum):
    """The life of a session, as a user sees it."""

    NOT_CONNECTED = "not connected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """One immutable snapshot of a session.

    Times are ``time.time()`` seconds; ``last_rtt`` is in seconds.
    """

    url: str
    session_id: str
    state: SessionState = SessionState.NOT_CONNECTED
    server_version: str | None = None
    roots: int = 0
    models: int = 0
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    last_rtt: float | None = None
    last_activity: float | None = None
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> SessionStatus:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


Subscriber = Callable[[SessionStatus], None]


class StatusPublisher:
    """Holds the latest status and tells subscribers about each new one.

    Subscribers are called on the thread that publishes (the session's I/O loop);
    a subscriber that needs another thread must hop there itself. A subscriber
    that raises is removed and the error logged, so one broken view cannot break
    the session.
    """

    def __init__(self, initial: SessionStatus) -> None:
        self._status = initial
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    @property
    def status(self) -> SessionStatus:
        """The latest snapshot."""
        return self._status

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every new snapshot; return an unsubscribe function."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, **changes: Any) -> SessionStatus:
        """Apply ``changes`` to the latest snapshot and notify subscribers."""
        with self._lock:
            self._status = self._status.with_changes(**changes)
            status = self._status
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(status)
            except Exception:
                log.exception("status subscriber %r failed and was removed", subscriber)
                with self._lock:
                    if subscriber in self._subscribers:
                        self._subscribers.remove(subscriber)
        return status
