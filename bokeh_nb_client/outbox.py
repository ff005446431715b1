"""The outbox: local changes waiting to be sent, and the writer task that sends them.

``put`` runs on the Document's home thread, in the change callback, right after
the change was serialized there (a consistent snapshot). Everything else runs on
the session's I/O loop. The writer drains the outbox into one PATCH-DOC per batch
(PROTOCOL.md §3: the server accepts several events per message): whatever piled up
while the previous batch was written leaves together, and runs of single-row
streams are merged. At most ``MAX_IN_FLIGHT`` patches wait for their OK at a time,
so while the server works, new changes accumulate into bigger batches instead of
many small messages.

A change that cannot be sent is never lost silently: a batch over
``max_message_size`` is dropped from the queue (it can never be sent as it is),
reported through ``on_rejected`` (log and status) and kept as an error that the
next blocking call (``force_roundtrip``, ``pull``...) raises; the writer carries on
with later changes. Patches the server refused (ERROR replies) are reported the
same way.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import _bokeh
from ._bokeh import EncodedEvents
from .connection import Connection
from .exceptions import BokehClientError, ConnectionClosed, MessageTooBig, ServerError
from .pending import PendingWrites, WriteKey, overwrite_keys
from .protocol.messages import MsgType
from .protocol.wire import JsonText, WireMessage

__all__ = ["MAX_EVENTS_PER_PATCH", "MAX_IN_FLIGHT", "Outbox"]

log = logging.getLogger(__name__)

MAX_EVENTS_PER_PATCH = 20_000
MAX_IN_FLIGHT = 2


class _Release:
    """Releases one batch's pending writes exactly once."""

    __slots__ = ("_keys", "_pending")

    def __init__(self, pending: PendingWrites, keys: list[WriteKey]) -> None:
        self._pending: PendingWrites | None = pending
        self._keys = keys

    def __call__(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.release(self._keys)


class Outbox:
    """Queued changes of one session and the task that writes them.

    Args:
        on_answered: called (on the I/O loop) whenever a patch got its reply.
        on_rejected: called with the error of a patch that was refused: a
            ``ServerError`` from the server, or a ``MessageTooBig`` for a batch over
            ``max_message_size`` that was never sent.
    """

    def __init__(
        self,
        *,
        on_answered: Callable[[], None],
        on_rejected: Callable[[BokehClientError], None],
    ) -> None:
        self._queue: collections.deque[tuple[EncodedEvents, list[WriteKey]]] = (
            collections.deque()
        )
        #: Overwrites queued or in flight, not yet answered (see ``pending.py``).
        self.pending = PendingWrites()
        self._on_answered = on_answered
        self._on_rejected = on_rejected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._same_thread = True
        self._wake: asyncio.Event | None = None
        self._wake_requested = False
        self._writer: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[WireMessage]] = set()
        self._errors: list[BokehClientError] = []
        self._unacknowledged = 0

    # -- home thread -----------------------------------------------------------------

    def put(self, encoded: EncodedEvents) -> None:
        """Queue serialized events and wake the writer (safe from any thread)."""
        keys = overwrite_keys(encoded.events)
        self.pending.add(keys)
        self._queue.append((encoded, keys))
        if self._wake_requested:
            return
        self._wake_requested = True
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if self._same_thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # -- I/O loop --------------------------------------------------------------------

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        flush: Callable[[], Awaitable[None]],
        *,
        same_thread: bool,
        name: str,
    ) -> None:
        """Start a writer task that calls ``flush`` whenever changes are queued.

        ``same_thread`` says whether ``put`` runs on ``loop``'s thread (the async
        API) or on another one (the sync API's home thread).
        """
        self._loop = loop
        self._same_thread = same_thread
        self._wake = asyncio.Event()
        self._wake_requested = False
        if self._queue:
            self._wake.set()
        self._writer = loop.create_task(self._write_loop(self._wake, flush), name=name)

    def stop(self) -> asyncio.Task[None] | None:
        """Cancel the writer; return its task so the caller can await its end."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
        return writer

    async def _write_loop(self, wake: asyncio.Event, flush: Callable[[], Awaitable[None]]) -> None:
        while True:
            await wake.wait()
            wake.clear()
            try:
                await flush()
            except ConnectionClosed:
                return  # the session's on_closed handling takes over

    async def send_all(self, conn: Connection) -> None:
        """Send everything queued. The caller holds the session's send lock."""
        while True:
            while len(self._in_flight) >= MAX_IN_FLIGHT:
                await asyncio.wait(list(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            self._wake_requested = False
            batch = self._take_batch()
            if batch is None:
                return
            events, buffers, keys = batch
            release = _Release(self.pending, keys)
            try:
                future = await conn.send(
                    MsgType.PATCH_DOC,
                    JsonText(_bokeh.patch_content_json(events, buffers)),
                    buffers=buffers,
                    on_answered=release,  # in wire order, before the next message
                )
            except MessageTooBig as exc:
                error = MessageTooBig(
                    f"a local change ({len(events)} event(s)) was not sent: {exc}",
                    limit=exc.limit,
                    size=exc.size,
                )
                error.__cause__ = exc
                release()
                self._errors.append(error)
                self._on_rejected(error)
                continue
            except BaseException:
                release()
                raise
            self._in_flight.add(future)
            future.add_done_callback(functools.partial(self._answered, release=release))

    def _take_batch(
        self,
    ) -> tuple[list[Any], list[tuple[str, bytes]], list[WriteKey]] | None:
        queue = self._queue
        if not queue:
            return None
        events: list[Any] = []
        buffers: list[tuple[str, bytes]] = []
        keys: list[WriteKey] = []
        while queue and len(events) < MAX_EVENTS_PER_PATCH:
            encoded, batch_keys = queue.popleft()
            events.extend(encoded.events)
            buffers.extend(encoded.buffers)
            keys.extend(batch_keys)
        return _bokeh.merge_encoded_events(events), buffers, keys

    def _answered(self, future: asyncio.Future[WireMessage], release: _Release) -> None:
        release()  # no-op after a reply; needed after a cancel or a lost connection
        self._in_flight.discard(future)
        self._on_answered()
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, ConnectionClosed):
            self._unacknowledged += 1
        elif isinstance(error, ServerError):
            self._errors.append(error)
            self._on_rejected(error)

    def take_queued_events(self) -> list[Any]:
        """Remove and return every queued (unsent) event."""
        events: list[Any] = []
        while self._queue:
            encoded, keys = self._queue.popleft()
            self.pending.release(keys)
            events.extend(encoded.events)
        return events

    def take_unacknowledged(self) -> int:
        """How many batches lost their connection before an answer (and reset)."""
        count, self._unacknowledged = self._unacknowledged, 0
        return count

    def take_errors(self) -> list[BokehClientError]:
        """The server's rejections since the last call, oldest first (and reset)."""
        errors, self._errors = self._errors, []
        return errors
