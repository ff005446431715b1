"""Checks shared by the hostile-input tests: bounded time, no leaked tasks or sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp

from bokeh_nb_client.engine import get_engine

__all__ = [
    "Stopwatch",
    "engine_tasks",
    "open_aiohttp_sessions",
    "other_tasks_after_settling",
    "settle_engine_tasks",
    "stopwatch",
]

SETTLE = 3.0
"""Seconds tasks get to finish on their own before they count as leaked."""


@dataclass
class Stopwatch:
    start: float
    stop: float | None = None

    @property
    def elapsed(self) -> float:
        end = self.stop if self.stop is not None else time.monotonic()
        return end - self.start


@contextlib.contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time the block (also when it raises): ``with stopwatch() as sw: ...; sw.elapsed``."""
    watch = Stopwatch(time.monotonic())
    try:
        yield watch
    finally:
        watch.stop = time.monotonic()


def engine_tasks() -> set[asyncio.Task[object]]:
    """The tasks alive on the sync API's engine loop right now."""
    engine = get_engine()

    async def snapshot() -> set[asyncio.Task[object]]:
        current = asyncio.current_task()
        return {task for task in asyncio.all_tasks() if task is not current}

    return asyncio.run_coroutine_threadsafe(snapshot(), engine.loop).result(SETTLE)


def settle_engine_tasks(baseline: set[asyncio.Task[object]], timeout: float = SETTLE) -> list[str]:
    """Wait for the engine tasks started since ``baseline`` to end; name the ones that don't."""
    engine = get_engine()

    async def settle() -> list[str]:
        current = asyncio.current_task()
        new = {t for t in asyncio.all_tasks() if t is not current and t not in baseline}
        if new:
            await asyncio.wait(new, timeout=timeout)
        return sorted(t.get_name() for t in new if not t.done())

    return asyncio.run_coroutine_threadsafe(settle(), engine.loop).result(timeout + SETTLE)


async def other_tasks_after_settling(timeout: float = SETTLE) -> list[str]:
    """On the running loop: wait for every other task to end; name those still running."""
    current = asyncio.current_task()
    others = {t for t in asyncio.all_tasks() if t is not current}
    if others:
        await asyncio.wait(others, timeout=timeout)
    return sorted(t.get_name() for t in others if not t.done())


def open_aiohttp_sessions() -> set[int]:
    """Ids of the aiohttp ClientSessions in this process that are not closed."""
    gc.collect()
    return {
        id(obj)
        for obj in gc.get_objects()
        if isinstance(obj, aiohttp.ClientSession) and not obj.closed
    }
