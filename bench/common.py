"""Pieces shared by the benchmark scripts (``run.py`` and its ``*_side.py`` subprocesses).

The scripts run from ``bench/``, so they import this module as ``common``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bokeh.models import ColumnDataSource

__all__ = ["big_rows", "pull_record", "time_calls", "time_calls_async"]


def time_calls(call: Callable[[], object], n: int, warmup: int) -> list[float]:
    """Call ``call`` ``warmup`` times, then ``n`` times more; the seconds of each of those."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


async def time_calls_async(
    call: Callable[[], Awaitable[object]], n: int, warmup: int
) -> list[float]:
    """:func:`time_calls` for a coroutine function."""
    for _ in range(warmup):
        await call()
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def big_rows(session: Any) -> int:
    """The number of rows of the ``big`` ColumnDataSource of a pulled session."""
    assert session.document is not None
    source = session.document.get_model_by_name("big")
    assert isinstance(source, ColumnDataSource)
    return len(source.data["x"])


def pull_record(
    wall: float, cpu: float, rows: int, rss_before: int, maxrss_before: int, maxrss_after: int
) -> dict[str, Any]:
    """The result of one timed pull, as ``run.py`` reads it."""
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rows": rows,
        "rss_before": rss_before,
        "maxrss_before": maxrss_before,
        "maxrss_after": maxrss_after,
        "peak_above_baseline": maxrss_after - rss_before,
    }
