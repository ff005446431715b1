"""Client-side document callbacks on the Document's home loop.

``doc.add_periodic_callback``, ``add_timeout_callback`` and
``add_next_tick_callback`` on a document attached to a session run here, as tasks
on the home loop: the kernel's loop in a notebook, the caller's loop for the async
API, and in scripts the private loop that runs inside blocking calls (so, as with
``bokeh.client``, only while a blocking call or ``loop_until_closed()`` runs).

Semantics follow bokeh's server-side callback group (PROTOCOL.md §6): coroutine
callbacks are awaited; a periodic callback never overlaps itself (the next run
starts one period after the previous start, or when it ends if it ran longer);
an exception is logged with its traceback and does not stop a periodic
callback, which is what bokeh does on both server and client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from ._bokeh import CallbackSpec

__all__ = ["CallbackScheduler"]

log = logging.getLogger(__name__)


class CallbackScheduler:
    """Owns one task per scheduled callback on ``loop``; cancels them all on ``stop``.

    ``add`` and ``remove`` may be called from any thread: bokeh's documented way
    to update a document from a worker thread is ``doc.add_next_tick_callback``,
    and its change event reaches us on that worker thread. Off the loop's thread
    they are handed to the loop with ``call_soon_threadsafe``, which also wakes
    it, so the callback runs promptly even while the loop is idle (a kernel
    between cells). ``stop`` must be called on the loop's thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._tasks: dict[object, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def add(self, key: object, spec: CallbackSpec) -> None:
        """Start running the callback described by ``spec``, identified by ``key``."""
        if not self._on_loop():
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.add, key, spec)
            return
        if key in self._tasks:
            return
        runner = self._periodic if spec.kind == "periodic" else self._once
        task = self._loop.create_task(runner(key, spec), name=f"bokeh callback {spec.kind}")
        self._tasks[key] = task

    def remove(self, key: object) -> None:
        """Stop the callback ``key`` (no-op if it already finished).

        A callback removing itself while it runs (bokeh removes one-shot callbacks
        right before invoking them) is not cancelled: it finishes its current run,
        and a periodic one then stops.
        """
        if not self._on_loop():
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self.remove, key)
            return
        task = self._tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task(self._loop):
            task.cancel()

    def stop(self) -> None:
        """Cancel every callback (the session closed or disconnected)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()

    async def _once(self, key: object, spec: CallbackSpec) -> None:
        try:
            await asyncio.sleep(spec.seconds)
            await _invoke(spec.function)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def _periodic(self, key: object, spec: CallbackSpec) -> None:
        loop = self._loop
        next_start = loop.time() + spec.seconds
        while True:
            await asyncio.sleep(max(0.0, next_start - loop.time()))
            started = loop.time()
            await _invoke(spec.function)
            if self._tasks.get(key) is not asyncio.current_task(loop):
                return  # removed while it ran
            next_start = max(started + spec.seconds, loop.time())


async def _invoke(function: Callable[[], Any]) -> None:
    try:
        result = function()
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        # bokeh's documented behaviour: a failing callback is reported, and a
        # periodic one keeps running.
        log.exception("document callback %r raised", function)
