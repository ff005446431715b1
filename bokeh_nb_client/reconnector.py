"""Reconnect orchestration: one reopen sequence, driven by the session's state machine.

The policies (when, how often, pull or push) are described in ``reconnect.py``;
this module carries them out for one ``AsyncClientSession``:

* ``start(error)``: the connection dropped unexpectedly and a policy is set. The
  session moves to RECONNECTING and a task (owned here, cancelled by ``cancel``)
  retries with backoff until it succeeds or ``give_up_after`` passes (FAILED).
* ``reconnect_now()``: the user's ``reconnect()`` of a FAILED session; one attempt.
* Both run ``_reopen``, the one reopen sequence: open a connection without its
  writer, resynchronise the document (re-pull or re-push), then start the writer,
  so queued changes never reach a server session that may be a new one.
* ``wait(grace)``: a request made meanwhile waits for the reconnect for the
  policy's ``request_grace``, then raises ``ServerUnreachable`` (since when, and
  until when the reconnect goes on).
* A recreated server session (the server process was down, or every root id
  changed) is reported: ``session_recreated`` in the status, a log line and a
  ``SessionRecreatedWarning`` on the home thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .exceptions import (
    BokehClientError,
    ChangesDiscardedWarning,
    ConnectError,
    ServerUnreachable,
    SessionRecreatedWarning,
)
from .lifecycle import CONNECTED, FAILED, RECONNECTING
from .reconnect import Reconnect, describe_events
from .status import SessionState
from .warn import warn_at_caller

if TYPE_CHECKING:
    from .session import AsyncClientSession

__all__ = ["Reconnector"]

log = logging.getLogger(__name__)


class Reconnector:
    """Reconnects one session (see the module docstring). I/O loop only."""

    def __init__(self, session: AsyncClientSession) -> None:
        self._session = session
        self._task: asyncio.Task[None] | None = None
        self.lost_at: float | None = None  # time.time() the connection was lost
        self.until: float | None = None  # time.time() the reconnect gives up
        self._server_was_down = False

    @property
    def running(self) -> bool:
        """True while the background reconnect task runs."""
        return self._task is not None and not self._task.done()

    def start(self, policy: Reconnect, error: BokehClientError) -> None:
        """The connection dropped: move to RECONNECTING and reconnect in the background."""
        s = self._session
        s._lifecycle.move(RECONNECTING)
        s._settled_event().clear()
        self.lost_at = time.time()
        self.until = self.lost_at + policy.give_up_after
        self._server_was_down = False
        s._status.publish(state=SessionState.RECONNECTING, last_error=str(error))
        self._task = asyncio.get_running_loop().create_task(
            self._run(policy, error), name=f"bokeh-nb-client reconnect {s.id[:8]}"
        )

    def cancel(self) -> asyncio.Task[None] | None:
        """Cancel the background reconnect; return its task so the caller can await it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    async def wait(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the background reconnect to succeed.

        Raises:
            ServerUnreachable: it did not (the session keeps reconnecting).
        """
        s = self._session
        try:
            async with asyncio.timeout(grace):
                await s._settled_event().wait()
        except TimeoutError:
            since = self.lost_at or time.time()
            until = self.until or since
            error = ServerUnreachable(
                f"the server at {s.url} is unreachable since {_clock(since)} "
                f"({time.time() - since:.0f} s ago; last error: {s._failure}); waited "
                f"{grace:g} s for a reconnect. The session keeps reconnecting in the "
                f"background until {_clock(until)}: restart the server, then repeat the call",
                url=s.url,
                since=since,
                until=until,
                grace=grace,
            )
            raise error from s._failure

    async def _run(self, policy: Reconnect, error: BokehClientError) -> None:
        """Reconnect with backoff until success or ``give_up_after``."""
        s = self._session
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.give_up_after
        last = error
        for attempt, delay in enumerate(policy.delays(), start=1):
            if attempt > 1 and loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
            s._publish_extra(reconnect_attempt=attempt)
            try:
                await self._reopen(policy)
            except BokehClientError as exc:
                last = exc
                if isinstance(exc, ConnectError):
                    self._server_was_down = True
                log.info("session %s…: reconnect attempt %d failed: %s", s.id[:8], attempt, exc)
                s._status.publish(last_error=f"reconnect attempt {attempt} failed: {exc}")
                continue
            return
        self._fail(last, f"gave up reconnecting: {last}")

    async def reconnect_now(self, policy: Reconnect) -> None:
        """One reopen of a FAILED session (the user's ``reconnect()``).

        Raises:
            BokehClientError: the attempt failed; the session stays FAILED.
        """
        s = self._session
        s._lifecycle.move(RECONNECTING)
        s._settled_event().clear()
        s._ended_event().clear()
        s._status.publish(state=SessionState.RECONNECTING)
        self._server_was_down = True  # the connection was gone: assume a new server
        try:
            await self._reopen(policy)
        except BokehClientError as exc:
            self._fail(exc, str(exc))
            raise

    async def _reopen(self, policy: Reconnect) -> None:
        """The one reopen sequence: connect, resynchronise, then start the writer."""
        s = self._session
        try:
            await s._open(start_writer=False)
            recreated = await self._resynchronise(policy)
        except BokehClientError:
            conn = s._conn
            if conn is not None and not conn.closed:
                await conn.close(1000, "resync failed")
            raise
        s._start_writer()
        s._failure = None
        s._lifecycle.move(CONNECTED)
        s._settled_event().set()
        s._publish_extra(reconnects=s.status.extra.get("reconnects", 0) + 1)
        s._status.publish(state=SessionState.CONNECTED)
        if recreated or self._server_was_down:
            self._report_recreated(certain=recreated)

    def _fail(self, error: BokehClientError, message: str) -> None:
        s = self._session
        s._failure = error
        s._lifecycle.move(FAILED)
        s._status.publish(state=SessionState.ERROR, last_error=message)
        s._end()

    def _report_recreated(self, *, certain: bool) -> None:
        s = self._session
        s._publish_extra(session_recreated=True, session_recreated_at=time.time())
        why = (
            "every root of the re-pulled document has a new id"
            if certain
            else "the server could not be reached for a while: it restarted or dropped the session"
        )
        message = (
            f"session {s.id[:8]}… reconnected to a NEW server session ({why}): the app ran "
            "again, so the server's state was reset. Models you hold that no longer exist "
            "refuse changes; look them up again in session.document"
        )
        # Reported to the user once, as the warning (at the user's next call, on the
        # home thread), like VersionMismatchWarning; the log line is for debugging.
        log.info("%s", message)
        s._docsync.post_home(lambda: warn_at_caller(message, SessionRecreatedWarning))

    async def _resynchronise(self, policy: Reconnect) -> bool:
        """Re-pull or re-push as the policy says; return whether every root id changed."""
        s = self._session
        sync = s._docsync
        mode = s._last_op if policy.mode == "auto" else policy.mode
        if mode is None or sync.document is None:
            return False
        pending: list[Any] = sync.outbox.take_queued_events()
        unacknowledged = sync.outbox.take_unacknowledged()
        if mode == "push":
            await s._push_now(None)  # the Document holds every local change
            return False
        names = await sync.on_home(lambda: sync.model_names(pending))
        recreated = await s._pull_now()
        discarded = describe_events(pending, names)
        if unacknowledged:
            discarded.append(
                f"{unacknowledged} batch(es) of changes sent but not acknowledged before the "
                "connection dropped (the re-pulled document shows whether they arrived)"
            )
        if discarded:
            s._discarded.extend(discarded)
            shown = "; ".join(discarded[:10]) + (" ..." if len(discarded) > 10 else "")
            message = (
                f"session {s.id[:8]}… reconnected and re-pulled the server's document; "
                f"{len(discarded)} local change(s) were discarded: {shown}"
            )
            log.warning("%s", message)
            # Warn on the home thread, where the user's code runs and sees it.
            sync.post_home(lambda: warn_at_caller(message, ChangesDiscardedWarning))
        return recreated


def _clock(when: float) -> str:
    """A wall-clock time for messages, e.g. ``14:03:07``."""
    return time.strftime("%H:%M:%S", time.localtime(when))
