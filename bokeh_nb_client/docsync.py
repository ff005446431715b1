"""Document sync: one session's Document, its outgoing changes and the server's.

``DocumentSync`` is the session's Document side (PROTOCOL.md §4.3):

* Outgoing: bokeh calls ``document_changed`` synchronously on the thread that
  changed the Document. On its home thread a change is serialized right there (a
  consistent snapshot) and queued in the outbox, whose writer sends batches. A
  change made on another thread is refused (see ``check_home_thread``).
* Echo suppression: changes applied with ``setter=<the session>`` are the
  server's, and are not sent back; patches between a PUSH-DOC and its OK echo our
  own push and are ignored.
* Incoming: ``receive_patch`` (I/O loop, wire order) drops what our unacknowledged
  writes supersede (``pending.py``) and queues the rest for the home thread,
  where it is applied in bounded slices (``engine.Home.drain``). A backlog over
  ``MAX_INCOMING_BACKLOG`` is coalesced into one re-pull: memory stays bounded,
  the count is published, nothing is dropped silently.
* Client-side document callbacks run on the home loop (``callbacks.py``).

Threads: ``document_changed``, the ``apply_*``/``install_*``/``prepare_push``
methods and ``attach``/``detach`` run on the home thread; ``receive_patch`` and
the coalescing state on the I/O loop; the backlog counter is shared under a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import _bokeh
from ._bokeh import Document
from .callbacks import CallbackScheduler
from .engine import Home
from .exceptions import BokehClientError, RemoteProtocolError, SessionStateError
from .lifecycle import Lifecycle
from .outbox import Outbox
from .pending import without_superseded
from .protocol.wire import WireMessage
from .status import StatusPublisher

__all__ = ["MAX_INCOMING_BACKLOG", "DocumentSync", "run_into"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Server patches waiting to be applied before they are coalesced into a re-pull.
MAX_INCOMING_BACKLOG = 200

Buffers = Sequence[_bokeh.ReceivedBuffer]


class DocumentSync:
    """The Document of one session and both directions of its sync.

    Args:
        setter: the object changes from the server are applied with (the
            session: ``event.setter is session`` identifies them to user code).
        label: how logs name the session.
        lifecycle: the session's state machine (read only: "is it over?").
        status: where counts and errors are published.
        outbox: the queue of outgoing changes and its writer.
        home: the Document's home thread (sync API), or None for the async API,
            whose home is the session's loop.
        request_repull: asks the session for a re-pull (I/O loop); its argument
            says whether it coalesces a backlog.
    """

    def __init__(
        self,
        *,
        setter: object,
        label: str,
        lifecycle: Lifecycle,
        status: StatusPublisher,
        outbox: Outbox,
        home: Home | None,
        request_repull: Callable[[bool], None],
    ) -> None:
        self._setter = setter
        self._label = label
        self._lifecycle = lifecycle
        self._status = status
        self.outbox = outbox
        self._home = home
        self._request_repull = request_repull
        self.document: Document | None = None
        self._scheduler: CallbackScheduler | None = None
        self._suppress_outgoing = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_home: Home | None = None
        self._loop_thread: int | None = None
        # Echo of our own PUSH-DOC: patches between the push and its OK.
        self.push_in_progress = False
        self.push_reply: asyncio.Future[WireMessage] | None = None
        # Work queued on the home thread for a request still running.
        self._home_work: set[concurrent.futures.Future[Any]] = set()
        self.superseded = 0  # incoming changes our pending writes overwrote
        self._backlog = 0  # patches queued for the home thread, not yet applied
        self._backlog_lock = threading.Lock()
        self._generation = 0  # bumped when queued patches are superseded by a re-pull
        self.coalescing = False
        self.coalesced = 0

    @property
    def home_is_loop(self) -> bool:
        """True for the async API: changes are made on the session's own loop thread."""
        return self._home is None

    def model_names(self, events: list[Any]) -> dict[str, str]:
        """``{model id: "Slider 'volume' (p1)"}`` for the models ``events`` name (home thread)."""
        doc = self.document
        names: dict[str, str] = {}
        if doc is None:
            return names
        for event in events:
            model = event.get("model") if isinstance(event, dict) else None
            model_id = model.get("id") if isinstance(model, dict) else None
            if isinstance(model_id, str) and model_id not in names:
                found = doc.get_model_by_id(model_id)  # type: ignore[arg-type]
                if found is not None:
                    names[model_id] = _bokeh.describe_model(found)
        return names

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the session's I/O loop (called once, on that loop's thread)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        if self._home is None:
            self._loop_home = Home(loop, owns_loop=False)

    # -- the home thread ---------------------------------------------------------

    def post_home(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the home thread (now, with the async API)."""
        if self._home is None:
            fn()
        else:
            self._home.post(fn)

    def post_in_order(self, fn: Callable[[], None]) -> None:
        """Queue document work (patches, installs) for the home thread, in arrival order.

        With the async API too it goes through a queue drained in bounded slices
        on the session's loop, so a flood of patches cannot starve other tasks.
        """
        home = self._home or self._loop_home
        if home is None:
            fn()
        else:
            home.post(fn)

    async def on_home(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the home thread after the work already queued there."""
        home = self._home or self._loop_home
        if home is None or home.loop.is_closed():
            return fn()  # not bound yet, or the home thread is gone
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        home.post(lambda: run_into(result, fn))
        return await asyncio.wrap_future(result)

    def track_home_work(self, work: concurrent.futures.Future[Any]) -> None:
        """Remember home work of a running request, until ``untrack_home_work``."""
        self._home_work.add(work)

    def untrack_home_work(self, work: concurrent.futures.Future[Any]) -> None:
        """The request that queued ``work`` has finished."""
        self._home_work.discard(work)

    def abandon_home_work(self) -> None:
        """Cancel home work of requests still running (thread-safe; see the session)."""
        for work in list(self._home_work):
            work.cancel()

    # -- outgoing ------------------------------------------------------------------

    def document_changed(self, event: Any) -> None:
        """Document change callback, on the thread that made the change. Must stay cheap."""
        kind = _bokeh.classify_event(event)
        if kind == "patch":
            if self._suppress_outgoing or _bokeh.event_setter(event) is self._setter:
                return
            self.check_home_thread(event)
            if self._lifecycle.over:
                log.warning(
                    "session %s is not connected: a local change was not sent (%s)",
                    self._label,
                    _bokeh.describe_event(event),
                )
                return
            assert self.document is not None
            self.outbox.put(_bokeh.encode_events(self.document, [event]))
        elif kind == "callback_added" and self._scheduler is not None:
            callback = _bokeh.event_callback(event)
            self._scheduler.add(callback.id, _bokeh.callback_spec(callback))
        elif kind == "callback_removed" and self._scheduler is not None:
            self._scheduler.remove(_bokeh.event_callback(event).id)

    def check_home_thread(self, event: Any) -> None:
        """Refuse a document change made on a thread that is not the document's home.

        Decision (issue 11 item 3): refuse, loudly, rather than marshal. The change
        is already made in the local document when bokeh tells us about it, and
        serializing it here would race with the home thread applying server
        patches to the same models (the server then rejects or loses changes).
        bokeh's documented way, ``doc.add_next_tick_callback(fn)``, runs ``fn`` on
        the home thread promptly, from any thread.

        Raises:
            SessionStateError: naming ``add_next_tick_callback``; the change was
                not sent to the server.
        """
        home_thread = self._home.thread_id if self._home is not None else self._loop_thread
        if home_thread is None or threading.get_ident() == home_thread:
            return
        raise SessionStateError(
            f"a {_bokeh.describe_event(event)} was made on thread "
            f"{threading.current_thread().name!r}, but the document of session "
            f"{self._label} lives on the thread that opened it; the change was NOT sent "
            "to the server (the local document now differs from it). Change the document "
            "from other threads with doc.add_next_tick_callback(fn), which runs fn on "
            "the document's own thread"
        )

    # -- incoming (I/O loop) --------------------------------------------------------

    def receive_patch(self, message: WireMessage) -> None:
        """A server PATCH-DOC arrived (I/O loop, wire order)."""
        push = self.push_reply
        if self.push_in_progress or (push is not None and not push.done()):
            log.debug("ignoring a PATCH-DOC that echoes our PUSH-DOC")
            return
        if self.coalescing:
            # A re-pull is under way: its reply holds this change too.
            self.coalesced += 1
            return
        with self._backlog_lock:
            backlog = self._backlog
        if backlog >= MAX_INCOMING_BACKLOG:
            self._coalesce(backlog)
            return
        # Superseded in wire order (with the OKs): see pending.py.
        content, dropped = without_superseded(message.content, self.outbox.pending)
        self._count_superseded(dropped)
        generation = self._generation
        with self._backlog_lock:
            self._backlog += 1
        self.post_in_order(lambda: self._apply_queued(generation, content, message.buffers))

    def _coalesce(self, backlog: int) -> None:
        """Too many patches wait to be applied: replace them with one re-pull.

        The queued patches are skipped (their generation is over), the ones that
        arrive until the re-pull's reply are dropped (the reply holds their
        effect), and ``patches_coalesced`` in the status counts them all.
        """
        self.coalescing = True
        self._generation += 1
        self.coalesced += backlog
        log.info(
            "session %s: %d server patches wait to be applied; coalescing them into a re-pull",
            self._label,
            backlog,
        )
        self._request_repull(True)

    def end_coalescing(self) -> None:
        """The re-pull's reply arrived (or the re-pull failed): patches apply again."""
        if self.coalescing:
            self.coalescing = False
            extra = {**self._status.status.extra, "patches_coalesced": self.coalesced}
            self._status.publish(extra=extra)

    # -- incoming (home thread) -------------------------------------------------------

    def _apply_queued(self, generation: int, content: Any, buffers: Buffers) -> None:
        with self._backlog_lock:
            self._backlog -= 1
        if generation != self._generation:
            return  # superseded by a re-pull queued behind it
        self._apply_patch(content, buffers)

    def _count_superseded(self, dropped: int) -> None:
        if dropped:
            self.superseded += dropped
            log.debug("session %s: %d incoming change(s) superseded", self._label, dropped)

    def _apply_patch(self, content: Any, buffers: Buffers) -> None:
        doc = self.document
        if doc is None or self._lifecycle.closed:
            return
        content, dropped = without_superseded(content, self.outbox.pending)
        self._count_superseded(dropped)
        outcome = _bokeh.apply_patch(doc, content, buffers, setter=self._setter)
        if outcome.error is not None:
            log.warning(
                "session %s: a server patch could not be applied (%r); re-pulling the document",
                self._label,
                outcome.error,
            )
            self._status.publish(last_error=f"re-pulled after a patch failed: {outcome.error!r}")
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(self._request_repull, False)

    def install_pulled(self, reply: WireMessage) -> bool:
        """Install a PULL-DOC-REPLY; return whether the root ids all changed.

        Raises:
            RemoteProtocolError: the reply is not a document (nothing changed).
        """
        try:
            return self._install_document(reply)
        except BokehClientError:
            raise
        except Exception as exc:
            raise RemoteProtocolError(
                f"the server's PULL-DOC-REPLY could not be loaded as a document: {exc!r}"
            ) from exc

    def _install_document(self, reply: WireMessage) -> bool:
        new_ids = False
        if self.document is None:
            self.attach(_bokeh.new_document_from_reply(reply.content, reply.buffers))
        else:
            old_roots = {root.id for root in self.document.roots}
            self._suppress_outgoing += 1
            try:
                _bokeh.replace_document_from_reply(
                    self.document, reply.content, reply.buffers, refuse_stale=self._stale_error
                )
            finally:
                self._suppress_outgoing -= 1
            new_roots = {root.id for root in self.document.roots}
            new_ids = bool(old_roots and new_roots and old_roots.isdisjoint(new_roots))
        self.publish_counts()
        return new_ids

    def _stale_error(self, model: _bokeh.Model) -> SessionStateError:
        return SessionStateError(
            f"{_bokeh.describe_model(model)} is no longer part of session {self._label}'s "
            "document: a later pull (or a reconnect) replaced every model with the server's "
            "copy, so this change reaches nobody. Look the model up again, e.g. "
            "session.document.select_one({'name': ...}) or get_model_by_id(...)"
        )

    def prepare_push(self, document: Document | None) -> _bokeh.DocumentContent:
        """Serialize the document to push (attaching it the first time, without
        starting its callbacks: they start once ``push()`` returned, as in bokeh.client)."""
        doc = document or self.document or Document()
        content = _bokeh.document_content(doc)
        if self.document is None:
            self.attach(doc, start_callbacks=False)
        self.publish_counts()
        return content

    def start_callbacks(self) -> None:
        """Start the attached document's session callbacks (home thread; idempotent)."""
        if self.document is not None and self._scheduler is not None:
            for callback in _bokeh.document_session_callbacks(self.document):
                self._scheduler.add(callback.id, _bokeh.callback_spec(callback))

    def attach(self, doc: Document, *, start_callbacks: bool = True) -> None:
        """Make ``doc`` the synced document and (unless told not to) start its
        callbacks (home thread)."""
        self.document = doc
        loop = self._home.loop if self._home is not None else self._loop
        assert loop is not None
        self._scheduler = CallbackScheduler(loop)
        doc.on_change(self.document_changed)
        if start_callbacks:
            self.start_callbacks()

    def detach(self) -> None:
        """Stop syncing the document (it stays usable locally)."""
        doc = self.document
        if doc is not None:
            doc.remove_on_change(self.document_changed)
        self.stop_callbacks()

    def stop_callbacks(self) -> None:
        """Cancel the client-side document callbacks."""
        if self._scheduler is not None:
            self._scheduler.stop()

    def publish_counts(self) -> None:
        """Publish the number of roots and models."""
        doc = self.document
        if doc is not None:
            self._status.publish(roots=len(doc.roots), models=len(list(doc.models)))


def run_into(result: concurrent.futures.Future[T], fn: Callable[[], T]) -> None:
    """Run ``fn`` and put its outcome into ``result`` (unless it was cancelled)."""
    if result.set_running_or_notify_cancel():
        try:
            result.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - forwarded to whoever awaits ``result``
            result.set_exception(exc)
