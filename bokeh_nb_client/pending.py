"""Writes not yet acknowledged by the server: how concurrent writers converge.

Two clients on one server session that both set ``slider.value`` race: the server
applies A's and B's patches in some order and broadcasts each to the other
client. A client that applied every incoming change would end with the value of
the other client's write that the server processed *before* its own still
unacknowledged one, while the server ends with its own: they never converge.

The rule (the one BokehJS's server side already implies): every PATCH-DOC gets an
OK, so a client knows which of its writes the server has not processed yet. An
incoming change to a ``(model id, property)`` pair with such a pending write was
processed by the server *before* that write, which will overwrite it there: the
incoming change is superseded and is not applied. Once the last pending write to
a pair is acknowledged, changes to it apply again, and every client ends equal to
the server.

Only whole-value overwrites take part (``ModelChanged`` and ``ColumnDataChanged``):
streams and patches compose and are always applied. The check is made twice: when
a patch arrives (on the I/O loop, in wire order with the OKs) and when it is
applied (on the home thread, where a write made meanwhile also supersedes it).
Thread-safe: ``add`` runs on the home thread, ``release`` on the I/O loop.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["PendingWrites", "WriteKey", "overwrite_keys", "without_superseded"]

WriteKey = tuple[str, str]

_OVERWRITES = frozenset({"ModelChanged", "ColumnDataChanged"})


def overwrite_keys(events: Iterable[Any]) -> list[WriteKey]:
    """The ``(model id, attr)`` pairs that encoded patch events overwrite."""
    keys: list[WriteKey] = []
    for event in events:
        key = _key(event)
        if key is not None:
            keys.append(key)
    return keys


def _key(event: Any) -> WriteKey | None:
    if not isinstance(event, dict) or event.get("kind") not in _OVERWRITES:
        return None
    model, attr = event.get("model"), event.get("attr")
    if not isinstance(model, dict) or not isinstance(attr, str):
        return None
    model_id = model.get("id")
    return (model_id, attr) if isinstance(model_id, str) else None


class PendingWrites:
    """A multiset of the pairs our queued or in-flight patches overwrite."""

    def __init__(self) -> None:
        self._counts: collections.Counter[WriteKey] = collections.Counter()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._counts)

    def add(self, keys: Iterable[WriteKey]) -> None:
        """Record writes that were queued (home thread)."""
        with self._lock:
            self._counts.update(keys)

    def release(self, keys: Iterable[WriteKey]) -> None:
        """Forget writes the server answered (or that will never be sent)."""
        with self._lock:
            self._counts.subtract(keys)
            self._counts = +self._counts  # drop pairs at zero

    def clear(self) -> None:
        """Forget every pending write (after a reconnect resynchronised the document)."""
        with self._lock:
            self._counts.clear()

    def superseded(self, key: WriteKey) -> bool:
        """True when one of our pending writes will overwrite ``key`` on the server."""
        with self._lock:
            return self._counts[key] > 0 if key in self._counts else False


def without_superseded(content: Any, pending: PendingWrites) -> tuple[Any, int]:
    """``content`` of a PATCH-DOC minus the events our pending writes supersede.

    Returns the (possibly new) content and how many events were dropped; the
    original content is never modified.
    """
    if not len(pending) or not isinstance(content, dict):
        return content, 0
    events = content.get("events")
    if not isinstance(events, list):
        return content, 0
    kept = [e for e in events if (key := _key(e)) is None or not pending.superseded(key)]
    dropped = len(events) - len(kept)
    if not dropped:
        return content, 0
    return {**content, "events": kept}, dropped
