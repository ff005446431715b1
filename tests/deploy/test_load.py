"""Load: one process holds many concurrent sessions that stream rows; nothing is lost.

N sessions (default 200, ``BOKEH_NB_LOAD_SESSIONS``) are opened with the async API
on one loop, each on the ``sink`` app of one ``bokeh serve`` (its own server
session, an empty ``sink`` ColumnDataSource). Each session streams one row ten
times a second for D seconds (``x`` = row number, ``y`` = session number), on its
own schedule. Then every session round-trips, and fresh sessions joined to each
session id pull the server's documents: every row of every session must be there,
in order, exactly once.

The default run lasts D = 5 s (``BOKEH_NB_LOAD_SECONDS`` overrides it); the
``slow`` run lasts 60 s (``pytest -m slow tests/deploy``). The process's RSS is
measured before connecting, once connected, after streaming and after closing;
the growth over the run must stay under 150 MB. That is a generous bound on
memory, not a timing assertion: the single-threaded ``bokeh serve`` is the
bottleneck, and the client merges rows into fewer messages when it falls behind.
A summary table is printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psutil  # type: ignore[import-untyped]
import pytest
from bokeh.models import ColumnDataSource
from bokeh_server import BokehServer

from bokeh_nb_client import AsyncClientSession, pull_session_async
from bokeh_nb_client.status import SessionState

from .deploy_support import StartUpstream, named

pytestmark = pytest.mark.interop

T = TypeVar("T")

ROWS_PER_SECOND = 10
DEFAULT_SECONDS = 5.0
FULL_SECONDS = 60.0
MAX_RSS_GROWTH = 150 * 1024 * 1024
#: Per-request timeout of the load sessions: generous, since 200 sessions share
#: one single-threaded server on a small machine. Not a performance bound.
REQUEST_TIMEOUT = 120.0
#: How many verification pulls run at once.
VERIFY_BATCH = 50


def _sessions() -> int:
    return int(os.environ.get("BOKEH_NB_LOAD_SESSIONS", "200"))


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


@dataclass
class LoadResult:
    """What one load run did and measured."""

    sessions: int
    seconds: float
    rows_sent: int = 0
    rows_verified: int = 0
    lost: int = 0
    misordered_sessions: list[str] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    messages_out: int = 0
    leftover_tasks: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A small summary table."""
        mib = 1024 * 1024
        start = self.rss["start"]
        rows = [
            ("sessions", f"{self.sessions}"),
            ("stream duration", f"{self.seconds:g} s at {ROWS_PER_SECOND} rows/s each"),
            ("rows sent", f"{self.rows_sent}"),
            ("rows verified on the server", f"{self.rows_verified}"),
            ("rows lost (sent - verified)", f"{self.lost}"),
            ("sessions not exactly as sent", f"{len(self.misordered_sessions)}"),
            ("tasks left after closing", f"{len(self.leftover_tasks)}"),
            ("PATCH-DOC etc. messages sent", f"{self.messages_out}"),
            *((f"RSS {name}", f"{value / mib:.1f} MiB") for name, value in self.rss.items()),
            ("RSS growth (end - start)", f"{(self.rss['end'] - start) / mib:+.1f} MiB"),
            *((f"time: {name}", f"{value:.2f} s") for name, value in self.phases.items()),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"  {name:<{width}}  {value}" for name, value in rows]
        return "\n".join(["", "load summary", *lines])


async def _stream(
    session: AsyncClientSession, number: int, rows: int, start: float, phase: float
) -> int:
    """Stream ``rows`` rows into the session's sink at ROWS_PER_SECOND; return the count."""
    sink = named(session.document, "sink", ColumnDataSource)
    loop = asyncio.get_running_loop()
    for row in range(rows):
        due = start + phase + row / ROWS_PER_SECOND
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the producer, not synchronisation
        sink.stream({"x": [row], "y": [number]})
    return rows


async def _verify(url: str, session_id: str, number: int, rows: int) -> tuple[int, bool]:
    """Pull session ``session_id`` afresh and compare its sink with the rows sent.

    Returns how many rows sit at their own position (row ``i`` at index ``i``,
    tagged with this session's ``number``), and whether the sink holds exactly
    the rows sent, in order, nothing else.
    """
    fresh = await pull_session_async(session_id, url=url, reconnect=None, timeout=REQUEST_TIMEOUT)
    async with fresh:
        data = named(fresh.document, "sink", ColumnDataSource).data
        xs, ys = list(data["x"]), list(data["y"])
    in_place = sum(1 for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if (x, y) == (i, number))
    return in_place, xs == list(range(rows)) and ys == [number] * rows


async def _batched(calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the calls ``VERIFY_BATCH`` at a time; return their results in order."""
    results: list[T] = []
    for first in range(0, len(calls), VERIFY_BATCH):
        batch = calls[first : first + VERIFY_BATCH]
        results.extend(await asyncio.gather(*(call() for call in batch)))
    return results


async def _run(server: BokehServer, sessions: int, seconds: float) -> LoadResult:
    result = LoadResult(sessions=sessions, seconds=seconds)
    url = server.http_url("sink")
    rows = round(seconds * ROWS_PER_SECOND)
    clock = time.monotonic
    result.rss["start"] = _rss()

    began = clock()
    opened = await asyncio.gather(
        *(
            pull_session_async(url=url, reconnect=None, timeout=REQUEST_TIMEOUT)
            for _ in range(sessions)
        )
    )
    result.phases["connect + pull"] = clock() - began
    result.rss["connected"] = _rss()
    try:
        began = clock()
        loop = asyncio.get_running_loop()
        start = loop.time()
        rng = random.Random(1234)
        sent = await asyncio.gather(
            *(
                _stream(session, number, rows, start, rng.random() / ROWS_PER_SECOND)
                for number, session in enumerate(opened)
            )
        )
        result.phases["streaming"] = clock() - began
        result.rows_sent = sum(sent)

        began = clock()
        await asyncio.gather(*(session.force_roundtrip() for session in opened))
        result.phases["force_roundtrip all"] = clock() - began
        result.rss["after streaming"] = _rss()
        for session in opened:
            assert session.status.state is SessionState.CONNECTED, session.status
            local = named(session.document, "sink", ColumnDataSource)
            assert len(local.data["x"]) == rows  # the local copy has every row too
        result.messages_out = sum(session.status.messages_out for session in opened)

        began = clock()

        def verifier(number: int, session_id: str) -> Callable[[], Awaitable[tuple[int, bool]]]:
            return lambda: _verify(url, session_id, number, rows)

        checks = await _batched(
            [verifier(number, session.id) for number, session in enumerate(opened)]
        )
        result.phases["verify from fresh sessions"] = clock() - began
    finally:
        await asyncio.gather(*(session.close() for session in opened))
    leftover = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    result.leftover_tasks = [task.get_name() for task in leftover]
    for (in_place, exact), session in zip(checks, opened, strict=True):
        result.rows_verified += in_place
        if not exact:
            result.misordered_sessions.append(session.id[:8])
    result.lost = result.rows_sent - result.rows_verified
    result.rss["end"] = _rss()
    return result


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(None, id="short"),
        pytest.param(FULL_SECONDS, id="full", marks=pytest.mark.slow),
    ],
)
def test_many_sessions_stream_without_loss(
    start_upstream: StartUpstream, capsys: pytest.CaptureFixture[str], seconds: float | None
) -> None:
    if seconds is None:
        seconds = float(os.environ.get("BOKEH_NB_LOAD_SECONDS", DEFAULT_SECONDS))
    sessions = _sessions()
    server = start_upstream(apps=["sink"])
    result = asyncio.run(_run(server, sessions, seconds))
    with capsys.disabled():
        print(result.table())
    assert result.rows_sent == sessions * round(seconds * ROWS_PER_SECOND)
    assert result.misordered_sessions == []
    assert result.lost == 0
    assert result.rows_verified == result.rows_sent
    assert result.leftover_tasks == [], "closed sessions left tasks running"
    growth = result.rss["end"] - result.rss["start"]
    assert growth < MAX_RSS_GROWTH, f"RSS grew by {growth / 2**20:.1f} MiB"
