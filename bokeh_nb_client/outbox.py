"""The outbox: local changes waiting to be sent, and the writer task that sends them.

``put`` runs on the Document's home thread, in the change callback, right after
the change was serialized there (a consistent snapshot). Everything else runs on
the session's I/O loop. The writer drains the outbox into one PATCH-DOC per batch
(PROTOCOL.md §3: the server accepts several events per message): whatever piled up
while the previous batch was written leaves together, and runs of single-row
streams are merged. At most ``MAX_IN_FLIGHT`` patches wait for their OK at a time,
so while the server works, new changes accumulate into bigger batches instead of
many small messages.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import _bokeh
from ._bokeh import EncodedEvents
from .connection import Connection
from .exceptions import ConnectionClosed, ServerError
from .protocol.messages import MsgType
from .protocol.wire import JsonText, WireMessage

__all__ = ["MAX_EVENTS_PER_PATCH", "MAX_IN_FLIGHT", "Outbox"]

log = logging.getLogger(__name__)

MAX_EVENTS_PER_PATCH = 20_000
MAX_IN_FLIGHT = 2


class Outbox:
    """Queued changes of one session and the task that writes them.

    Args:
        on_answered: called (on the I/O loop) whenever a patch got its reply.
        on_rejected: called with the ``ServerError`` of a patch the server refused.
    """

    def __init__(
        self,
        *,
        on_answered: Callable[[], None],
        on_rejected: Callable[[ServerError], None],
    ) -> None:
        self._queue: collections.deque[EncodedEvents] = collections.deque()
        self._on_answered = on_answered
        self._on_rejected = on_rejected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._same_thread = True
        self._wake: asyncio.Event | None = None
        self._wake_requested = False
        self._writer: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[WireMessage]] = set()
        self._errors: list[ServerError] = []
        self._unacknowledged = 0

    def __bool__(self) -> bool:
        return bool(self._queue)

    # -- home thread -----------------------------------------------------------------

    def put(self, encoded: EncodedEvents) -> None:
        """Queue serialized events and wake the writer (safe from any thread)."""
        self._queue.append(encoded)
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
                return

    async def send_all(self, conn: Connection) -> None:
        """Send everything queued. The caller holds the session's send lock."""
        while True:
            while len(self._in_flight) >= MAX_IN_FLIGHT:
                await asyncio.wait(list(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            self._wake_requested = False
            batch = self._take_batch()
            if batch is None:
                return
            events, buffers = batch
            future = await conn.send(
                MsgType.PATCH_DOC,
                JsonText(_bokeh.patch_content_json(events, buffers)),
                buffers=buffers,
            )
            self._in_flight.add(future)
            future.add_done_callback(self._answered)

    def _take_batch(self) -> tuple[list[Any], list[tuple[str, bytes]]] | None:
        queue = self._queue
        if not queue:
            return None
        events: list[Any] = []
        buffers: list[tuple[str, bytes]] = []
        while queue and len(events) < MAX_EVENTS_PER_PATCH:
            encoded = queue.popleft()
            events.extend(encoded.events)
            buffers.extend(encoded.buffers)
        return _bokeh.merge_encoded_events(events), buffers

    def _answered(self, future: asyncio.Future[WireMessage]) -> None:
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
            events.extend(self._queue.popleft().events)
        return events

    def take_unacknowledged(self) -> int:
        """How many batches lost their connection before an answer (and reset)."""
        count, self._unacknowledged = self._unacknowledged, 0
        return count

    def take_errors(self) -> list[ServerError]:
        """The server's rejections since the last call, oldest first (and reset)."""
        errors, self._errors = self._errors, []
        return errors
