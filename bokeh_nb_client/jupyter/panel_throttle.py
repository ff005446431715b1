"""``StatusThrottle``: status snapshots posted from any thread, applied on one loop.

The status panel's rows subscribe to their sessions' status. Subscribers run on
the session's I/O thread (the engine thread for a ``ClientSession``), where widget
traits must not be set, so a snapshot is only *recorded* there; the throttle keeps
the latest one per row and applies them on the kernel's loop, from a timer handle,
at most every ``interval`` seconds (see :mod:`.panel`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["DEFAULT_INTERVAL", "Cancellable", "LoopLike", "StatusThrottle"]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

#: Seconds between two applications of status snapshots (about 10 a second).
DEFAULT_INTERVAL = 0.1


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
