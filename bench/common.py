"""Pieces shared by the benchmark scripts (``run.py`` and its ``*_side.py`` subprocesses).

The scripts run from ``bench/``, so they import this module as ``common``.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.document.events import ColumnsStreamedEvent, DocumentChangedEvent
from bokeh.models import ColumnDataSource

__all__ = [
    "RowCounter",
    "big_rows",
    "cpu_seconds",
    "minor_faults",
    "pull_record",
    "stream_chunks",
    "stream_record",
    "time_calls",
    "time_calls_async",
    "verify_stream",
]


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def minor_faults() -> int:
    """Minor page faults of this process so far (fresh memory touched)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def stream_chunks(chunks: int, chunk: int) -> list[dict[str, Any]]:
    """The numpy chunks of case 7: ``x`` counts rows 0.., ``y`` is ``x / 2``.

    Also imports ``numpy.ma``, which bokeh's array serializer would otherwise
    import lazily (about 30 ms) inside the first timed ``stream()``.
    """
    import numpy.ma  # noqa: F401

    out = []
    for i in range(chunks):
        x = np.arange(i * chunk, (i + 1) * chunk, dtype=np.float64)
        out.append({"x": x, "y": x / 2})
    return out


def verify_stream(document: Document | None, n: int, rollover: int) -> dict[str, Any]:
    """Whether the ``sink`` of a re-pulled document holds the last rows of an n-row stream."""
    assert document is not None
    source = document.get_model_by_name("sink")
    assert isinstance(source, ColumnDataSource)
    x, y = np.asarray(source.data["x"]), np.asarray(source.data["y"])
    kept = min(n, rollover)
    expected = np.arange(n - kept, n, dtype=np.float64)
    return {
        "rows_on_server": len(x),
        "in_order": bool(np.array_equal(x, expected) and np.array_equal(y, expected / 2)),
    }


def stream_record(rows: int, seconds: float, cpu: float) -> dict[str, Any]:
    """The result of one stream measurement, as ``run.py`` reads it."""
    return {
        "rows": rows,
        "seconds": seconds,
        "cpu_s": cpu,
        "rows_per_s": rows / seconds if seconds else None,
        "rows_per_cpu_s": rows / cpu if cpu else None,
    }


class RowCounter:
    """A document change callback counting the rows of every ``ColumnsStreamed`` applied."""

    def __init__(self) -> None:
        self.rows = 0
        self.events = 0

    def __call__(self, event: DocumentChangedEvent) -> None:
        if isinstance(event, ColumnsStreamedEvent):
            self.events += 1
            self.rows += len(next(iter(event.data.values())))


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
    wall: float,
    cpu: float,
    rows: int,
    rss_before: int,
    maxrss_before: int,
    maxrss_after: int,
    minflt: int | None = None,
) -> dict[str, Any]:
    """The result of one timed pull, as ``run.py`` reads it."""
    return {
        "minflt": minflt,
        "wall_s": wall,
        "cpu_s": cpu,
        "rows": rows,
        "rss_before": rss_before,
        "maxrss_before": maxrss_before,
        "maxrss_after": maxrss_after,
        "peak_above_baseline": maxrss_after - rss_before,
    }
