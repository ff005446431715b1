"""Benchmark ``bokeh_nb_client`` against ``bokeh.client`` and a raw aiohttp floor.

Usage::

    python bench/run.py [--quick | --tiny] [--out bench/results]

One stock ``bokeh serve`` (the apps in ``bench/apps``) is started on 127.0.0.1,
and every case is measured for three implementations in the same run:

* ``ours``: this package, through its public API;
* ``bokeh``: ``bokeh.client``, each measurement in a fresh plain Python process
  (``bench/bokeh_client_side.py``), since it owns a tornado loop;
* ``floor``: the least a websocket client must do for the same exchange, on raw
  aiohttp (``bench/floor.py``).

Results go to ``<out>/latest.md`` (the table, also printed) and
``<out>/latest.json``. The exit status is 0 when every ``ours`` measurement
produced a number; a failure of ``bokeh.client`` or of the floor is recorded, not
fatal. Targets are informational (PASS/MISS), never a failure. See
``bench/README.md`` for what each case measures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, ModelChangedEvent
from bokeh.models import ColumnDataSource
from common import (
    RowCounter,
    cpu_seconds,
    stream_chunks,
    stream_record,
    time_calls,
    time_calls_async,
    verify_stream,
)
from floor import RawSession, array_stream_patch, column, find_root, stream_patch

from bokeh_nb_client import AsyncClientSession, ClientSession, pull_session

JsonDict = dict[str, Any]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
APPS_DIR = BENCH_DIR / "apps"
APPS = ("tiny", "large", "sink", "ticker", "huge", "arrays_sink", "streamer")
BOKEH_SIDE = BENCH_DIR / "bokeh_client_side.py"
PULL_SIDE = BENCH_DIR / "pull_side.py"
KERNEL_COPY = BENCH_DIR / "kernel_copy.py"
MAX_MESSAGE_SIZE = 100 * 2**20
#: The server's per-message limit: room for case 2b's arrays and case 7's chunks.
SERVER_MAX_MESSAGE_SIZE = 2**30
#: Rows per PATCH-DOC in the floor's burst (the same cap as bokeh_nb_client's batches).
FLOOR_ROWS_PER_PATCH = 20_000
SUBPROCESS_TIMEOUT = 300.0

IMPLS = ("ours", "bokeh", "floor")
CASES = (
    "latency",
    "pull",
    "pull_huge",
    "open",
    "burst",
    "server_push",
    "kernel",
    "stream_out",
    "stream_in",
)
#: The order cases run in: the ones that create hundreds of sessions last, so the
#: server's heap (and its garbage collector's pauses) grows after the
#: latency-sensitive cases are done.
RUN_ORDER = (
    "latency",
    "server_push",
    "kernel",
    "stream_in",
    "pull",
    "pull_huge",
    "stream_out",
    "burst",
    "open",
)
CASE_TITLES = {
    "latency": "1. request/reply latency (force_roundtrip)",
    "pull": "2. pull of a large document",
    "pull_huge": "2b. pull of a huge document",
    "open": "3. opening sessions",
    "burst": "4. client-to-server burst",
    "server_push": "5. server-to-client latency",
    "kernel": "6. kernel responsiveness",
    "stream_out": "7. numpy streams, client to server",
    "stream_in": "8. numpy streams, server to client",
}


@dataclass(frozen=True)
class Sizes:
    """How much each case does; one instance per mode."""

    latency_n: int
    latency_n_bokeh: int
    pull_rows: int
    pull_repeats: int
    open_n: int
    concurrent_n: int
    burst_n: int
    burst_n_bokeh: int
    burst_n_bokeh_fallback: int
    ticker_s: float
    kernel_n: int
    huge_rows: int
    stream_chunks: int
    stream_chunk: int
    stream_rollover: int
    stream_in_s: float


SIZES = {
    "full": Sizes(
        latency_n=2000,
        latency_n_bokeh=50,
        pull_rows=2_000_000,
        pull_repeats=3,
        open_n=100,
        concurrent_n=100,
        burst_n=100_000,
        burst_n_bokeh=2000,
        burst_n_bokeh_fallback=200,
        ticker_s=5.0,
        kernel_n=200,
        huge_rows=32_000_000,
        stream_chunks=100,
        stream_chunk=10_000,
        stream_rollover=100_000,
        stream_in_s=3.0,
    ),
    "quick": Sizes(
        latency_n=100,
        latency_n_bokeh=10,
        pull_rows=200_000,
        pull_repeats=1,
        open_n=30,
        concurrent_n=100,
        burst_n=5000,
        burst_n_bokeh=2000,
        burst_n_bokeh_fallback=200,
        ticker_s=1.0,
        kernel_n=30,
        huge_rows=4_000_000,
        stream_chunks=30,
        stream_chunk=10_000,
        stream_rollover=100_000,
        stream_in_s=1.0,
    ),
    "tiny": Sizes(
        latency_n=30,
        latency_n_bokeh=5,
        pull_rows=20_000,
        pull_repeats=1,
        open_n=10,
        concurrent_n=20,
        burst_n=1000,
        burst_n_bokeh=500,
        burst_n_bokeh_fallback=100,
        ticker_s=0.5,
        kernel_n=10,
        huge_rows=250_000,
        stream_chunks=5,
        stream_chunk=10_000,
        stream_rollover=100_000,
        stream_in_s=0.5,
    ),
}


# -- the server -------------------------------------------------------------------


def _load_server_helper() -> ModuleType:
    """Import ``tests/bokeh_server.py`` by path (``tests`` is not a package)."""
    path = REPO_DIR / "tests" / "bokeh_server.py"
    spec = importlib.util.spec_from_file_location("bokeh_server", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bokeh_server"] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Urls:
    """http and ws URLs of the benchmark apps on the running server."""

    http: dict[str, str]
    ws: dict[str, str]


@contextmanager
def bokeh_server(rows: int, huge_rows: int) -> Iterator[Urls]:
    """One stock ``bokeh serve`` with every app in ``bench/apps``.

    ``--websocket-max-message-size`` allows the large document in both
    directions. Abandoned sessions are kept for an hour, i.e. for the whole run:
    bokeh serve discards an expired session with a ``gc.get_referrers`` scan of
    the whole heap (``DocumentModuleManager.destroy``), and when hundreds of
    sessions expire together that stalls its event loop for seconds, which would
    land in whichever case runs at that moment.
    """
    helper = _load_server_helper()
    extra_args = [
        "--log-level",
        "warning",
        "--websocket-max-message-size",
        str(SERVER_MAX_MESSAGE_SIZE),
        "--unused-session-lifetime",
        str(3_600_000),
    ]
    apps = [APPS_DIR / f"{name}.py" for name in APPS]
    with helper.BokehServer.start(
        apps,
        extra_args=extra_args,
        env={"BENCH_ROWS": str(rows), "BENCH_HUGE_ROWS": str(huge_rows)},
    ) as srv:
        yield Urls(
            http={name: srv.http_url(name) for name in APPS},
            ws={name: srv.ws_url(name) for name in APPS},
        )


# -- small helpers -----------------------------------------------------------------


def summarize(samples_s: Sequence[float]) -> JsonDict:
    """n, p50, p99, mean and max of durations given in seconds, in milliseconds."""
    values = np.asarray(samples_s, dtype=float) * 1e3
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
        "max_ms": float(values.max()),
    }


def run_side(script: Path, *args: str, timeout: float = SUBPROCESS_TIMEOUT) -> JsonDict:
    """Run a measurement script in a fresh interpreter and parse its JSON line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=REPO_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": {"type": "Timeout", "message": f"{script.name} {args[0]} > {timeout}s"}}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {
            "error": {
                "type": "SubprocessFailed",
                "message": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}",
            }
        }
    result: JsonDict = json.loads(lines[-1])
    return result


def guarded(fn: Callable[[], JsonDict]) -> JsonDict:
    """Run one measurement; an exception becomes ``{"error": ...}``."""
    try:
        return fn()
    except Exception as exc:
        return {
            "error": {
                "type": type(exc).__name__,
                "message": str(exc)[:1500],
                "traceback": traceback.format_exc()[-3000:],
            }
        }


def log(text: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- case 1: request/reply latency ---------------------------------------------------


def latency_ours(url: str, n: int, warmup: int) -> JsonDict:
    session = pull_session(url=url)
    try:
        samples = time_calls(session.force_roundtrip, n, warmup)
    finally:
        session.close()
    return summarize(samples)


def latency_ours_async(ws_url: str, n: int, warmup: int) -> JsonDict:
    async def measure() -> list[float]:
        session = AsyncClientSession(websocket_url=ws_url)
        try:
            await session.pull()
            return await time_calls_async(session.force_roundtrip, n, warmup)
        finally:
            await session.close()

    return summarize(asyncio.run(measure()))


def latency_floor(ws_url: str, n: int, warmup: int, *, quickack: bool = True) -> JsonDict:
    async def measure() -> list[float]:
        raw = await RawSession.open(ws_url, quickack=quickack)
        try:
            return await time_calls_async(lambda: raw.request("SERVER-INFO-REQ"), n, warmup)
        finally:
            await raw.close()

    return summarize(asyncio.run(measure()))


def latency_bokeh(url: str, n: int) -> JsonDict:
    raw = run_side(BOKEH_SIDE, "latency", url, "--n", str(n))
    if "error" in raw:
        return raw
    return summarize(raw["samples_s"])


def case_latency(urls: Urls, sizes: Sizes) -> JsonDict:
    warmup = 20
    return {
        "ours": guarded(lambda: latency_ours(urls.http["tiny"], sizes.latency_n, warmup)),
        "ours_async": guarded(lambda: latency_ours_async(urls.ws["tiny"], sizes.latency_n, warmup)),
        "floor": guarded(lambda: latency_floor(urls.ws["tiny"], sizes.latency_n, warmup)),
        "floor_nodelay_only": guarded(
            lambda: latency_floor(urls.ws["tiny"], sizes.latency_n_bokeh, 3, quickack=False)
        ),
        "bokeh": guarded(lambda: latency_bokeh(urls.http["tiny"], sizes.latency_n_bokeh)),
    }


# -- case 2: pull of a large document -------------------------------------------------


def pull_summary(runs: list[JsonDict]) -> JsonDict:
    """Median wall time and memory peak over repeated fresh-process pulls."""
    failures = [r for r in runs if "error" in r]
    if failures:
        return failures[0]
    return {
        "repeats": len(runs),
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "wall_s_all": [r["wall_s"] for r in runs],
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "peak_above_baseline_bytes": statistics.median(r["peak_above_baseline"] for r in runs),
        "minflt": statistics.median(r.get("minflt") or 0 for r in runs),
        "rows": runs[0]["rows"],
        "runs": runs,
    }


def _pull_three(url: str, warm: str, rows: int, repeats: int, max_message_size: int) -> JsonDict:
    common = ["--warm-url", warm, "--max-message-size", str(max_message_size)]
    runs: dict[str, list[JsonDict]] = {"ours": [], "bokeh": [], "floor": []}
    for _ in range(repeats):  # interleaved, so drift hits all three alike
        runs["ours"].append(run_side(PULL_SIDE, "ours", url, *common))
        runs["bokeh"].append(run_side(BOKEH_SIDE, "pull", url, *common))
        runs["floor"].append(run_side(PULL_SIDE, "floor", url, *common))
    result: JsonDict = {impl: pull_summary(r) for impl, r in runs.items()}
    result["payload_bytes"] = rows * 2 * 8
    for impl in ("ours", "bokeh", "floor"):
        pulled = result[impl].get("rows")
        if pulled is not None and pulled != rows:
            result[impl] = {"error": {"type": "WrongRows", "message": f"{pulled} rows pulled"}}
    return result


def case_pull(urls: Urls, sizes: Sizes) -> JsonDict:
    result = _pull_three(
        urls.http["large"], urls.http["tiny"], sizes.pull_rows, sizes.pull_repeats, MAX_MESSAGE_SIZE
    )
    # What the kernel alone charges a receiver for the same bytes (the limit).
    result["kernel"] = run_side(
        KERNEL_COPY, "--bytes", str(result["payload_bytes"]), "--repeats", "3"
    )
    return result


def case_pull_huge(urls: Urls, sizes: Sizes) -> JsonDict:
    """Case 2b: one pull each of the huge document, max_message_size raised."""
    limit = max(MAX_MESSAGE_SIZE, sizes.huge_rows * 8 * 2)
    return _pull_three(urls.http["huge"], urls.http["tiny"], sizes.huge_rows, 1, limit)


# -- case 3: opening sessions -----------------------------------------------------------


def open_ours(ws_url: str, n: int, concurrent: int) -> JsonDict:
    samples: list[float] = []
    for i in range(n + 5):
        start = time.perf_counter()
        session = ClientSession(websocket_url=ws_url)
        session.connect()
        session.close()
        if i >= 5:  # the first few warm up
            samples.append(time.perf_counter() - start)

    async def at_once() -> tuple[float, float]:
        sessions = [AsyncClientSession(websocket_url=ws_url) for _ in range(concurrent)]
        start = time.perf_counter()
        await asyncio.gather(*(s.connect() for s in sessions))
        connected = time.perf_counter() - start
        await asyncio.gather(*(s.close() for s in sessions))
        return connected, time.perf_counter() - start

    connected, total = asyncio.run(at_once())
    return _open_result(samples, concurrent, connected, total, "asyncio.gather")


def open_floor(ws_url: str, n: int, concurrent: int) -> JsonDict:
    async def measure() -> tuple[list[float], float, float]:
        samples: list[float] = []
        for i in range(n + 5):
            start = time.perf_counter()
            raw = await RawSession.open(ws_url)
            await raw.close()
            if i >= 5:
                samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        raws = await asyncio.gather(*(RawSession.open(ws_url) for _ in range(concurrent)))
        connected = time.perf_counter() - start
        await asyncio.gather(*(raw.close() for raw in raws))
        return samples, connected, time.perf_counter() - start

    samples, connected, total = asyncio.run(measure())
    return _open_result(samples, concurrent, connected, total, "asyncio.gather")


def open_bokeh(url: str, concurrent: int) -> JsonDict:
    raw = run_side(BOKEH_SIDE, "open", url, "--n", str(concurrent))
    if "error" in raw:
        return raw
    # bokeh.client has no concurrent API: the "at once" figure is n sequential opens.
    return _open_result(raw["samples_s"], concurrent, raw["total_s"], raw["total_s"], "sequential")


def _open_result(
    samples: list[float], concurrent: int, connected: float, total: float, mode: str
) -> JsonDict:
    return {
        "sequential": summarize(samples),
        "concurrent_n": concurrent,
        "concurrent_mode": mode,
        "concurrent_connected_s": connected,
        "concurrent_total_s": total,
    }


def case_open(urls: Urls, sizes: Sizes) -> JsonDict:
    ws, http = urls.ws["tiny"], urls.http["tiny"]
    return {
        "ours": guarded(lambda: open_ours(ws, sizes.open_n, sizes.concurrent_n)),
        "floor": guarded(lambda: open_floor(ws, sizes.open_n, sizes.concurrent_n)),
        "bokeh": guarded(lambda: open_bokeh(http, sizes.concurrent_n)),
    }


# -- case 4: client-to-server burst -------------------------------------------------------


def burst_ours(url: str, n: int) -> JsonDict:
    session = pull_session(url=url)
    try:
        assert session.document is not None
        source = session.document.get_model_by_name("sink")
        assert isinstance(source, ColumnDataSource)
        cpu_start, start = cpu_seconds(), time.perf_counter()
        for i in range(n):
            source.stream({"x": [i], "y": [i]})
        calls_done = time.perf_counter() - start
        session.force_roundtrip()
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        check = pull_session(session_id=session.id, url=url)
        try:
            assert check.document is not None
            held = check.document.get_model_by_name("sink")
            assert isinstance(held, ColumnDataSource)
            xs, ys = list(held.data["x"]), list(held.data["y"])
        finally:
            check.close()
    finally:
        session.close()
    expected = list(range(n))
    return {
        "n": n,
        "seconds": seconds,
        "stream_calls_s": calls_done,
        "events_per_s": n / seconds,
        "cpu_s": cpu,
        "events_per_cpu_s": n / cpu if cpu else None,
        "rows_on_server": len(xs),
        "in_order": xs == expected and ys == expected,
    }


def burst_floor(ws_url: str, n: int) -> JsonDict:
    async def measure() -> JsonDict:
        raw = await RawSession.open(ws_url)
        sid = raw.session_id
        try:
            model_id = find_root(await raw.request("PULL-DOC-REQ"), "sink")["id"]
            start = time.perf_counter()
            xs: list[int] = []
            ys: list[int] = []
            for i in range(n):
                xs.append(i)
                ys.append(i)
            for first in range(0, n, FLOOR_ROWS_PER_PATCH):
                last = first + FLOOR_ROWS_PER_PATCH
                await raw.send("PATCH-DOC", stream_patch(model_id, xs[first:last], ys[first:last]))
            await raw.request("SERVER-INFO-REQ")  # skips the PATCH-DOC OKs
            seconds = time.perf_counter() - start
            check = await RawSession.open(ws_url, session_id=sid)
            try:
                root = find_root(await check.request("PULL-DOC-REQ"), "sink")
            finally:
                await check.close()
        finally:
            await raw.close()
        held_x, held_y = column(root, "x"), column(root, "y")
        expected = list(range(n))
        return {
            "n": n,
            "seconds": seconds,
            "events_per_s": n / seconds,
            "rows_on_server": len(held_x),
            "in_order": held_x == expected and held_y == expected,
            "messages": -(-n // FLOOR_ROWS_PER_PATCH),
        }

    return asyncio.run(measure())


def burst_document_only(n: int) -> JsonDict:
    """The same ``stream()`` calls on a Document with no session: bokeh's own cost."""
    doc = Document()
    source = ColumnDataSource(data={"x": [], "y": []})
    doc.add_root(source)
    cpu_start, start = cpu_seconds(), time.perf_counter()
    for i in range(n):
        source.stream({"x": [i], "y": [i]})
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    return {
        "n": n,
        "seconds": seconds,
        "calls_per_s": n / seconds,
        "cpu_s": cpu,
        "calls_per_cpu_s": n / cpu if cpu else None,
    }


def burst_bokeh(url: str, n: int, fallback_n: int) -> JsonDict:
    result = run_side(BOKEH_SIDE, "burst", url, "--n", str(n))
    if "error" in result:
        # Also measure a burst small enough to survive, to have a rate to compare.
        result["fallback"] = run_side(BOKEH_SIDE, "burst", url, "--n", str(fallback_n))
    return result


def case_burst(urls: Urls, sizes: Sizes) -> JsonDict:
    sink_http, sink_ws = urls.http["sink"], urls.ws["sink"]
    # bokeh's own cost is measured right before and right after ours (same process,
    # same load), and the two are averaged.
    before = guarded(lambda: burst_document_only(sizes.burst_n))
    ours = guarded(lambda: burst_ours(sink_http, sizes.burst_n))
    after = guarded(lambda: burst_document_only(sizes.burst_n))
    document_only = before
    if "error" not in before and "error" not in after:
        document_only = {
            key: (before[key] + after[key]) / 2 if key != "n" else before[key] for key in before
        }
        document_only["runs"] = [before, after]
    return {
        "ours": ours,
        "floor": guarded(lambda: burst_floor(sink_ws, sizes.burst_n)),
        "bokeh": guarded(
            lambda: burst_bokeh(sink_http, sizes.burst_n_bokeh, sizes.burst_n_bokeh_fallback)
        ),
        "bokeh_document_only": document_only,
    }


# -- case 7: numpy streams, client to server ---------------------------------------------------


def stream_out_ours(url: str, sizes: Sizes) -> JsonDict:
    data = stream_chunks(sizes.stream_chunks, sizes.stream_chunk)
    n = sizes.stream_chunks * sizes.stream_chunk
    session = pull_session(url=url)
    try:
        assert session.document is not None
        source = session.document.get_model_by_name("sink")
        assert isinstance(source, ColumnDataSource)
        cpu_start, start = cpu_seconds(), time.perf_counter()
        for columns in data:
            source.stream(columns, rollover=sizes.stream_rollover)
        session.force_roundtrip()
        result = stream_record(n, time.perf_counter() - start, cpu_seconds() - cpu_start)
        with pull_session(session_id=session.id, url=url) as check:
            result.update(verify_stream(check.document, n, sizes.stream_rollover))
    finally:
        session.close()
    return result


def stream_out_floor(ws_url: str, sizes: Sizes) -> JsonDict:
    """The same PATCH-DOC bytes (built before the clock starts), written raw."""
    data = stream_chunks(sizes.stream_chunks, sizes.stream_chunk)
    n = sizes.stream_chunks * sizes.stream_chunk

    async def measure() -> JsonDict:
        raw = await RawSession.open(ws_url)
        try:
            model_id = find_root(await raw.request("PULL-DOC-REQ"), "sink")["id"]
            messages = [
                array_stream_patch(model_id, columns, sizes.stream_rollover, f"f{i}_")
                for i, columns in enumerate(data)
            ]
            cpu_start, start = cpu_seconds(), time.perf_counter()
            for content, buffers in messages:
                await raw.send_with_buffers("PATCH-DOC", content, buffers)
            await raw.request("SERVER-INFO-REQ")  # skips the PATCH-DOC OKs
            return stream_record(n, time.perf_counter() - start, cpu_seconds() - cpu_start)
        finally:
            await raw.close()

    result = asyncio.run(measure())
    result["messages"] = sizes.stream_chunks
    return result


def stream_out_bokeh(url: str, sizes: Sizes) -> JsonDict:
    return run_side(
        BOKEH_SIDE,
        "stream_out",
        url,
        "--chunks",
        str(sizes.stream_chunks),
        "--chunk",
        str(sizes.stream_chunk),
        "--rollover",
        str(sizes.stream_rollover),
    )


def interleaved(runners: dict[str, Callable[[], JsonDict]]) -> JsonDict:
    """Run each implementation twice, in the order A B C C B A, and pool the two runs.

    Cases 7 and 8 are bound by the server's rate, which drifts with the load of
    the shared machine; the mirrored order gives every implementation the same
    average position.
    """
    runs: dict[str, list[JsonDict]] = {name: [] for name in runners}
    for name in [*runners, *reversed(list(runners))]:
        runs[name].append(guarded(runners[name]))
    result: JsonDict = {}
    for name, pair in runs.items():
        failed = [r for r in pair if "error" in r]
        if failed:
            result[name] = failed[0]
            continue
        pooled = stream_record(
            sum(r["rows"] for r in pair),
            sum(r["seconds"] for r in pair),
            sum(r["cpu_s"] for r in pair),
        )
        if all("in_order" in r for r in pair):
            pooled["in_order"] = all(r["in_order"] for r in pair)
        pooled["runs"] = pair
        result[name] = pooled
    return result


def case_stream_out(urls: Urls, sizes: Sizes) -> JsonDict:
    http, ws = urls.http["arrays_sink"], urls.ws["arrays_sink"]
    return interleaved(
        {
            "ours": lambda: stream_out_ours(http, sizes),
            "floor": lambda: stream_out_floor(ws, sizes),
            "bokeh": lambda: stream_out_bokeh(http, sizes),
        }
    )


# -- case 8: numpy streams, server to client ---------------------------------------------------


def stream_in_ours(ws_url: str, duration: float) -> JsonDict:
    counter = RowCounter()

    async def measure() -> JsonDict:
        session = AsyncClientSession(websocket_url=ws_url)
        try:
            await session.pull()
            assert session.document is not None
            session.document.on_change(counter)
            cpu_start, start = cpu_seconds(), time.perf_counter()
            await asyncio.sleep(duration)
            rows, seconds, cpu = (
                counter.rows,
                time.perf_counter() - start,
                cpu_seconds() - cpu_start,
            )
            session.document.remove_on_change(counter)
        finally:
            await session.close()
        return stream_record(rows, seconds, cpu)

    return asyncio.run(measure())


def stream_in_floor(ws_url: str, duration: float) -> JsonDict:
    """Read the streamer's PATCH-DOCs raw; rows counted from the ndarray shapes."""

    async def measure() -> JsonDict:
        rows = 0
        raw = await RawSession.open(ws_url)
        try:
            cpu_start, start = cpu_seconds(), time.perf_counter()
            end = start + duration
            while (left := end - time.perf_counter()) > 0:
                try:
                    message = await asyncio.wait_for(raw.receive(), left)
                except TimeoutError:
                    break
                if message.header.get("msgtype") != "PATCH-DOC":
                    continue
                for event in json.loads(message.content)["events"]:
                    if event.get("kind") == "ColumnsStreamed":
                        first = event["data"]["entries"][0][1]
                        rows += first["shape"][0] if isinstance(first, dict) else len(first)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        finally:
            await raw.close()
        return stream_record(rows, seconds, cpu)

    return asyncio.run(measure())


def case_stream_in(urls: Urls, sizes: Sizes) -> JsonDict:
    seconds = sizes.stream_in_s
    result = interleaved(
        {
            "ours": lambda: stream_in_ours(urls.ws["streamer"], seconds),
            "floor": lambda: stream_in_floor(urls.ws["streamer"], seconds),
            "bokeh": lambda: run_side(
                BOKEH_SIDE, "stream_in", urls.http["streamer"], "--duration", str(seconds)
            ),
        }
    )
    result["duration_s"] = seconds
    return result


# -- case 5: server-to-client latency ---------------------------------------------------------


def server_push_ours(ws_url: str, duration: float) -> JsonDict:
    delays: list[float] = []

    def on_change(event: DocumentChangedEvent) -> None:
        if isinstance(event, ModelChangedEvent) and event.attr == "text" and event.new:
            delays.append(time.time() - float(event.new))

    async def measure() -> None:
        session = AsyncClientSession(websocket_url=ws_url)
        try:
            await session.pull()
            assert session.document is not None
            session.document.on_change(on_change)
            await asyncio.sleep(duration)
        finally:
            await session.close()

    asyncio.run(measure())
    return summarize(delays)


def server_push_floor(ws_url: str, duration: float) -> JsonDict:
    async def measure() -> list[float]:
        delays: list[float] = []
        raw = await RawSession.open(ws_url)
        try:
            end = time.perf_counter() + duration
            while (left := end - time.perf_counter()) > 0:
                try:
                    message = await asyncio.wait_for(raw.receive(), left)
                except TimeoutError:
                    break
                if message.header.get("msgtype") != "PATCH-DOC":
                    continue
                for event in json.loads(message.content)["events"]:
                    if event.get("kind") == "ModelChanged" and event.get("attr") == "text":
                        delays.append(time.time() - float(event["new"]))
        finally:
            await raw.close()
        return delays

    return summarize(asyncio.run(measure()))


def server_push_bokeh(url: str, duration: float) -> JsonDict:
    raw = run_side(BOKEH_SIDE, "ticker", url, "--duration", str(duration))
    if "error" in raw:
        return raw
    return summarize(raw["delays_s"])


def case_server_push(urls: Urls, sizes: Sizes) -> JsonDict:
    seconds = sizes.ticker_s
    return {
        "ours": guarded(lambda: server_push_ours(urls.ws["ticker"], seconds)),
        "floor": guarded(lambda: server_push_floor(urls.ws["ticker"], seconds)),
        "bokeh": guarded(lambda: server_push_bokeh(urls.http["ticker"], seconds)),
        "duration_s": seconds,
    }


# -- case 6: kernel responsiveness ----------------------------------------------------------------


def case_kernel(urls: Urls, sizes: Sizes) -> JsonDict:
    import kernel_case  # jupyter_client is only needed here

    def measure() -> JsonDict:
        raw = kernel_case.run(
            urls.http["ticker"],
            urls.http["sink"],
            sizes.kernel_n,
            streamer_url=urls.http["streamer"],
        )
        load = raw["load"]
        if not load["task_alive"]:
            raise RuntimeError("the in-kernel streaming task died during the measurement")
        stream_in = raw.get("stream_in") or {}
        return {
            "stream_in": summarize(raw.get("stream_in_s", [])),
            "stream_in_rows_per_s": (
                stream_in["rows"] / stream_in["seconds"] if stream_in.get("seconds") else None
            ),
            "baseline": summarize(raw["baseline_s"]),
            "loaded": summarize(raw["loaded_s"]),
            "load": load,
            "rows_streamed_per_s": load["rows"] / load["seconds"],
            "ticks_applied_per_s": load["ticks"] / load["seconds"],
            "bokeh_client_error": raw["bokeh_client_error"],
        }

    measured = guarded(measure)
    bokeh_error = measured.pop("bokeh_client_error", None)
    bokeh: JsonDict = {
        "status": "n/a",
        "error": bokeh_error,
        "note": "bokeh.client cannot run inside a kernel; tried once, in the same kernel",
    }
    return {"ours": measured, "bokeh": bokeh}


# -- targets, table, report -----------------------------------------------------------------------


@dataclass
class Target:
    """One informational target and whether this run met it."""

    case: str
    text: str
    status: str  # PASS, MISS or n/a
    detail: str


def _get(data: JsonDict, *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _status(*conditions: bool | None) -> str:
    if any(c is None for c in conditions):
        return "n/a"
    return "PASS" if all(conditions) else "MISS"


def _le(a: float | None, b: float) -> bool | None:
    return None if a is None else a <= b


def _ge(a: float | None, b: float) -> bool | None:
    return None if a is None else a >= b


def _fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"
    return f"{text}{unit}"


def _gbps(payload: Any, cpu: Any) -> float | None:
    rate = _ratio(payload, cpu)
    return None if rate is None else rate / 1e9


def evaluate(cases: JsonDict) -> list[Target]:
    """Compare the run with the issue's targets."""
    targets: list[Target] = []

    lat = cases.get("latency", {})
    p50 = _get(lat, "ours", "p50_ms")
    speedup = _ratio(_get(lat, "bokeh", "p50_ms"), p50)
    targets.append(
        Target(
            "latency",
            "p50 ≤ 1 ms and ≥ 50x faster than bokeh.client",
            _status(_le(p50, 1.0), _ge(speedup, 50.0)),
            f"p50 {_fmt(p50, ' ms')}, {_fmt(speedup, 'x')} faster",
        )
    )

    pull = cases.get("pull", {})
    cpu = _get(pull, "ours", "cpu_s")
    cpu_vs_bokeh = _ratio(cpu, _get(pull, "bokeh", "cpu_s"))
    cpu_vs_floor = _ratio(cpu, _get(pull, "floor", "cpu_s"))
    wall_vs_bokeh = _ratio(_get(pull, "ours", "wall_s"), _get(pull, "bokeh", "wall_s"))
    peak = _ratio(_get(pull, "ours", "peak_above_baseline_bytes"), pull.get("payload_bytes"))
    targets.append(
        Target(
            "pull",
            "client CPU ≤ 0.5x bokeh.client; peak RSS above baseline ≤ 1.2x payload",
            _status(_le(cpu_vs_bokeh, 0.5), _le(peak, 1.2)),
            f"CPU {_fmt(cpu_vs_bokeh, 'x')} bokeh, {_fmt(cpu_vs_floor, 'x')} floor; "
            f"peak {_fmt(peak, 'x')} payload; wall {_fmt(wall_vs_bokeh, 'x')} bokeh",
        )
    )
    payload = pull.get("payload_bytes")
    rate = _ratio(payload, cpu)
    kernel_rate = _get(pull, "kernel", "gb_per_s")
    targets.append(
        Target(
            "receive",
            "≥ 1 GB/s of payload per client CPU-second (whole pull)",
            _status(_ge(None if rate is None else rate / 1e9, 1.0)),
            f"{_fmt(None if rate is None else rate / 1e9, ' GB/s')} "
            f"(floor {_fmt(_gbps(payload, _get(pull, 'floor', 'cpu_s')), ' GB/s')}, "
            f"bokeh.client {_fmt(_gbps(payload, _get(pull, 'bokeh', 'cpu_s')), ' GB/s')}); "
            f"kernel limit {_fmt(kernel_rate, ' GB/s')}",
        )
    )

    huge = cases.get("pull_huge", {})
    huge_peak = _ratio(_get(huge, "ours", "peak_above_baseline_bytes"), huge.get("payload_bytes"))
    huge_payload = huge.get("payload_bytes")
    targets.append(
        Target(
            "pull_huge",
            "pulls, peak RSS above baseline ≤ 1.2x payload",
            _status(_get(huge, "ours", "rows") is not None, _le(huge_peak, 1.2)),
            f"{_fmt(None if huge_payload is None else huge_payload / 1e6, ' MB')}: "
            f"peak {_fmt(huge_peak, 'x')} payload, CPU "
            f"{_fmt(_ratio(_get(huge, 'ours', 'cpu_s'), _get(huge, 'bokeh', 'cpu_s')), 'x')} "
            "bokeh.client",
        )
    )

    opening = cases.get("open", {})
    seq = _ratio(
        _get(opening, "ours", "sequential", "mean_ms"),
        _get(opening, "floor", "sequential", "mean_ms"),
    )
    conc = _ratio(
        _get(opening, "ours", "concurrent_connected_s"),
        _get(opening, "floor", "concurrent_connected_s"),
    )
    targets.append(
        Target(
            "open",
            "≤ 1.2x floor (one at a time, and 100 at once)",
            _status(_le(seq, 1.2), _le(conc, 1.2)),
            f"one at a time {_fmt(seq, 'x')} floor, at once {_fmt(conc, 'x')} floor",
        )
    )

    burst = cases.get("burst", {})
    rate = _get(burst, "ours", "events_per_s")
    complete = _get(burst, "ours", "in_order")
    targets.append(
        Target(
            "burst",
            "≥ 50,000 events/s, none lost",
            _status(_ge(rate, 50_000), complete),
            f"{_fmt(rate, ' ev/s')}, all rows in order: {complete}",
        )
    )

    ours_rate = _get(burst, "ours", "events_per_cpu_s")
    own_rate = _get(burst, "bokeh_document_only", "calls_per_cpu_s")
    share = _ratio(ours_rate, own_rate)
    targets.append(
        Target(
            "burst_vs_bokeh",
            "≥ 90% of bokeh's own no-session stream() rate (per CPU-second)",
            _status(_ge(share, 0.9)),
            f"{_fmt(None if share is None else share * 100, '%')}: "
            f"{_fmt(ours_rate, ' ev/CPU-s')} vs {_fmt(own_rate, ' calls/CPU-s')}",
        )
    )

    for name, label in (("stream_out", "client to server"), ("stream_in", "server to client")):
        case = cases.get(name, {})
        ours = _get(case, "ours", "rows_per_s")
        vs_floor = _ratio(ours, _get(case, "floor", "rows_per_s"))
        vs_bokeh = _ratio(ours, _get(case, "bokeh", "rows_per_s"))
        conditions = [_ge(vs_floor, 1 / 1.5)]
        if vs_bokeh is not None:
            conditions.append(_ge(vs_bokeh, 3.0))
        if name == "stream_out":
            conditions.append(_get(case, "ours", "in_order"))
        cpu_row = _ratio(
            _get(case, "ours", "rows_per_cpu_s"), _get(case, "bokeh", "rows_per_cpu_s")
        )
        targets.append(
            Target(
                name,
                f"numpy rows/s {label}: within 1.5x of the floor, ≥ 3x bokeh.client",
                _status(*conditions),
                f"{_fmt(ours, ' rows/s')}: {_fmt(vs_floor, 'x')} floor, "
                f"{_fmt(vs_bokeh, 'x')} bokeh.client (rows per CPU-second "
                f"{_fmt(cpu_row, 'x')} bokeh.client)",
            )
        )

    push = cases.get("server_push", {})
    p50 = _get(push, "ours", "p50_ms")
    p99 = _get(push, "ours", "p99_ms")
    targets.append(
        Target(
            "server_push",
            "p50 ≤ 2 ms, p99 ≤ 10 ms",
            _status(_le(p50, 2.0), _le(p99, 10.0)),
            f"p50 {_fmt(p50, ' ms')}, p99 {_fmt(p99, ' ms')}",
        )
    )

    p99 = _get(cases, "kernel", "ours", "loaded", "p99_ms")
    targets.append(
        Target(
            "kernel",
            "p99 ≤ 20 ms under load",
            _status(_le(p99, 20.0)),
            f"loaded p99 {_fmt(p99, ' ms')}",
        )
    )
    p99_in = _get(cases, "kernel", "ours", "stream_in", "p99_ms")
    targets.append(
        Target(
            "kernel_stream_in",
            "p99 ≤ 20 ms while the kernel applies the server's numpy stream (case 8)",
            _status(_le(p99_in, 20.0)),
            f"p99 {_fmt(p99_in, ' ms')} at "
            f"{_fmt(_get(cases, 'kernel', 'ours', 'stream_in_rows_per_s'), ' rows/s')} applied",
        )
    )
    return targets


@dataclass
class Row:
    """One line of the Markdown table."""

    case: str
    metric: str
    ours: float | None
    bokeh: float | None
    floor: float | None
    unit: str
    bokeh_note: str = ""

    def cells(self) -> list[str]:
        bokeh_cell = self.bokeh_note or _fmt(self.bokeh, self.unit)
        return [
            self.case,
            self.metric,
            _fmt(self.ours, self.unit),
            bokeh_cell,
            _fmt(self.floor, self.unit),
            _fmt(_ratio(self.ours, self.bokeh), "x"),
            _fmt(_ratio(self.ours, self.floor), "x"),
        ]


def table_rows(cases: JsonDict) -> list[Row]:
    """The headline numbers of every case, as table rows."""
    rows: list[Row] = []
    lat = cases.get("latency", {})
    for pct in ("p50", "p99"):
        rows.append(
            Row(
                "1 latency",
                f"force_roundtrip {pct}",
                _get(lat, "ours", f"{pct}_ms"),
                _get(lat, "bokeh", f"{pct}_ms"),
                _get(lat, "floor", f"{pct}_ms"),
                " ms",
            )
        )
    rows.append(
        Row(
            "1 latency",
            "p50, async API (ours) / NODELAY-only (floor)",
            _get(lat, "ours_async", "p50_ms"),
            None,
            _get(lat, "floor_nodelay_only", "p50_ms"),
            " ms",
            bokeh_note="-",
        )
    )

    pull = cases.get("pull", {})
    payload = _get(pull, "payload_bytes")
    rows.append(
        Row(
            "2 pull",
            f"wall time ({_fmt(None if payload is None else payload / 1e6, ' MB')} payload)",
            _get(pull, "ours", "wall_s"),
            _get(pull, "bokeh", "wall_s"),
            _get(pull, "floor", "wall_s"),
            " s",
        )
    )
    rows.append(
        Row(
            "2 pull",
            "client CPU time (all threads)",
            _get(pull, "ours", "cpu_s"),
            _get(pull, "bokeh", "cpu_s"),
            _get(pull, "floor", "cpu_s"),
            " s",
        )
    )
    peaks = {impl: _get(pull, impl, "peak_above_baseline_bytes") for impl in IMPLS}
    mb = {impl: None if peak is None else peak / 1e6 for impl, peak in peaks.items()}
    rows.append(
        Row("2 pull", "peak RSS above baseline", mb["ours"], mb["bokeh"], mb["floor"], " MB")
    )
    faults = {impl: _get(pull, impl, "minflt") for impl in IMPLS}
    rows.append(
        Row(
            "2 pull",
            "minor page faults",
            faults["ours"],
            faults["bokeh"],
            faults["floor"],
            "",
        )
    )
    kernel_cpu = _get(pull, "kernel", "cpu_s")
    rows.append(
        Row(
            "2 pull",
            "receive, payload per client CPU-second (kernel alone: "
            f"{_fmt(_get(pull, 'kernel', 'gb_per_s'), ' GB/s')}, {_fmt(kernel_cpu, ' s')})",
            _gbps(payload, _get(pull, "ours", "cpu_s")),
            _gbps(payload, _get(pull, "bokeh", "cpu_s")),
            _gbps(payload, _get(pull, "floor", "cpu_s")),
            " GB/s",
        )
    )
    huge = cases.get("pull_huge", {})
    huge_payload = _get(huge, "payload_bytes")
    huge_mb = None if huge_payload is None else huge_payload / 1e6
    for metric, key, unit, scale in (
        ("client CPU time", "cpu_s", " s", 1.0),
        ("peak RSS above baseline", "peak_above_baseline_bytes", " MB", 1e-6),
    ):
        values = {
            impl: None if (v := _get(huge, impl, key)) is None else v * scale for impl in IMPLS
        }
        rows.append(
            Row(
                "2b huge pull",
                f"{metric} ({_fmt(huge_mb, ' MB')} payload)",
                values["ours"],
                values["bokeh"],
                values["floor"],
                unit,
            )
        )

    opening = cases.get("open", {})
    rows.append(
        Row(
            "3 open",
            "one at a time, mean",
            _get(opening, "ours", "sequential", "mean_ms"),
            _get(opening, "bokeh", "sequential", "mean_ms"),
            _get(opening, "floor", "sequential", "mean_ms"),
            " ms",
        )
    )
    n = _get(opening, "ours", "concurrent_n") or ""
    bokeh_conc = _get(opening, "bokeh", "concurrent_connected_s")
    rows.append(
        Row(
            "3 open",
            f"{n} at once, until all connected",
            _get(opening, "ours", "concurrent_connected_s"),
            bokeh_conc,
            _get(opening, "floor", "concurrent_connected_s"),
            " s",
            bokeh_note="" if bokeh_conc is None else f"{_fmt(bokeh_conc, ' s')} (sequential)",
        )
    )

    burst = cases.get("burst", {})
    bokeh_rate = _get(burst, "bokeh", "events_per_s")
    bokeh_note = ""
    if _get(burst, "bokeh", "error") is not None:
        error = burst["bokeh"]["error"]
        inner = ",".join(error.get("inside_loop", [])) or error.get("type")
        fallback = _get(burst, "bokeh", "fallback", "events_per_s")
        bokeh_rate = fallback
        bokeh_note = (
            f"fails at N={burst['bokeh'].get('n')} ({inner}); "
            f"{_fmt(fallback, ' ev/s')} at N={_get(burst, 'bokeh', 'fallback', 'n')}"
        )
    rows.append(
        Row(
            "4 burst",
            f"events/s, N={_get(burst, 'ours', 'n')} (higher is better)",
            _get(burst, "ours", "events_per_s"),
            bokeh_rate,
            _get(burst, "floor", "events_per_s"),
            "",
            bokeh_note=bokeh_note,
        )
    )

    rows.append(
        Row(
            "4 burst",
            "events per CPU-second (bokeh: its own stream() with no session)",
            _get(burst, "ours", "events_per_cpu_s"),
            _get(burst, "bokeh_document_only", "calls_per_cpu_s"),
            None,
            "",
        )
    )

    for name, title in (("stream_out", "7 stream out"), ("stream_in", "8 stream in")):
        case = cases.get(name, {})
        for metric, key in (
            ("rows/s (higher is better)", "rows_per_s"),
            ("rows per CPU-second", "rows_per_cpu_s"),
        ):
            rows.append(
                Row(
                    title,
                    metric,
                    _get(case, "ours", key),
                    _get(case, "bokeh", key),
                    _get(case, "floor", key),
                    "",
                )
            )

    push = cases.get("server_push", {})
    for pct in ("p50", "p99"):
        rows.append(
            Row(
                "5 server push",
                f"arrival delay {pct}",
                _get(push, "ours", f"{pct}_ms"),
                _get(push, "bokeh", f"{pct}_ms"),
                _get(push, "floor", f"{pct}_ms"),
                " ms",
            )
        )

    kernel = cases.get("kernel", {})
    for phase in ("baseline", "loaded", "stream_in"):
        for pct in ("p50", "p99"):
            rows.append(
                Row(
                    "6 kernel",
                    f"execute 1+1 {pct}, {phase}",
                    _get(kernel, "ours", phase, f"{pct}_ms"),
                    None,
                    None,
                    " ms",
                    bokeh_note="n/a",
                )
            )
    return rows


def render(report: JsonDict) -> str:
    """The Markdown report: header, table, targets, failures and notes."""
    meta = report["meta"]
    cases = report["cases"]
    lines = [
        f"# bokeh_nb_client benchmark ({meta['mode']})",
        "",
        f"- date: {meta['date']}",
        f"- machine: {meta['cpu']}, {meta['cores']} cores, {meta['platform']}",
        f"- python {meta['python']}; bokeh {meta['versions']['bokeh']}, aiohttp "
        f"{meta['versions']['aiohttp']}, tornado {meta['versions']['tornado']}, "
        f"ipykernel {meta['versions']['ipykernel']}, numpy {meta['versions']['numpy']}",
        f"- bokeh_nb_client {meta['versions']['bokeh_nb_client']} at {meta['commit']}",
        f"- run took {report['seconds']:.0f} s; 1-min load average "
        f"{meta['loadavg_1min_before']:.1f} before, {meta['loadavg_1min_after']:.1f} after "
        "(other processes share the cores)",
        "",
        "Ratios are ours ÷ other: below 1 is faster for times, above 1 is better for events/s.",
        "",
        "| case | metric | ours | bokeh.client | floor | ours/bokeh | ours/floor |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in table_rows(cases)]
    lines += ["", "## Targets (informational)", "", "| case | target | result | measured |"]
    lines += ["| --- | --- | --- | --- |"]
    for target in report["targets"]:
        lines.append(
            f"| {target['case']} | {target['text']} | {target['status']} | {target['detail']} |"
        )
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in notes(cases)]
    errors = [
        f"- {case} / {impl}: {_describe_error(data['error'])}"
        for case, per_impl in cases.items()
        for impl, data in per_impl.items()
        if isinstance(data, dict) and isinstance(data.get("error"), dict)
    ]
    if errors:
        lines += ["", "## Recorded failures", "", *errors]
    return "\n".join(lines) + "\n"


def _describe_error(error: JsonDict) -> str:
    text = f"{error['type']}: {error['message'][:300]}"
    inner = error.get("inside_loop")
    if inner:
        text += f" (inside its loop: {', '.join(inner)})"
    return text


def notes(cases: JsonDict) -> list[str]:
    """What the bare numbers do not say."""
    out = [
        "bokeh.client runs in a fresh plain Python process per measurement; "
        "`ours` runs in this process (sync API unless said otherwise).",
        "floor = raw aiohttp with TCP_NODELAY and TCP_QUICKACK re-armed after each frame; "
        "the NODELAY-only row shows the delayed-ACK stall that QUICKACK avoids.",
    ]
    if "open" in cases:
        out.append(
            "3: `ours` connect() also does one SERVER-INFO round trip (version check); "
            "the floor only waits for the ACK. bokeh.client has no concurrent API: its "
            "'at once' figure is the same number of sequential opens."
        )
    burst = cases.get("burst", {})
    if isinstance(_get(burst, "floor", "messages"), int):
        out.append(
            f"4: the floor sends the rows pre-merged ({burst['floor']['messages']} PATCH-DOC "
            "message(s)), so it measures the wire and the server, not per-call client work. "
            f"`ours`: the stream() calls took {_fmt(_get(burst, 'ours', 'stream_calls_s'), ' s')} "
            f"of its {_fmt(_get(burst, 'ours', 'seconds'), ' s')}. bokeh's own stream() on a "
            "Document with no session manages "
            f"{_fmt(_get(burst, 'bokeh_document_only', 'calls_per_s'), ' calls/s')} here: a "
            "ceiling for any client that is fed through source.stream()."
        )
    kernel = _get(cases, "kernel", "ours")
    if isinstance(kernel, dict) and "load" in kernel:
        out.append(
            f"6: load while measuring: {kernel['rows_streamed_per_s']:.0f} rows/s streamed out, "
            f"{kernel['ticks_applied_per_s']:.0f} ticker patches/s applied; "
            f"bokeh.client in the kernel: {_get(cases, 'kernel', 'bokeh', 'error')!r}"
        )
    return out


def machine_meta(mode: str) -> JsonDict:
    """Header facts: CPU, cores, versions, date, commit."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in ("bokeh", "aiohttp", "tornado", "ipykernel", "numpy", "bokeh_nb_client"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "?"
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=REPO_DIR,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "mode": mode,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
    }


def ratios(cases: JsonDict) -> JsonDict:
    """ours ÷ bokeh and ours ÷ floor for every headline number."""
    out: JsonDict = {}
    for row in table_rows(cases):
        out[f"{row.case}: {row.metric}"] = {
            "ours_over_bokeh": _ratio(row.ours, row.bokeh),
            "ours_over_floor": _ratio(row.ours, row.floor),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark bokeh_nb_client.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    size.add_argument("--tiny", action="store_true", help="smoke-test sizes (under a minute)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}"
    )
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    sizes = SIZES[mode]
    wanted = {c for c in args.cases.split(",") if c}
    unknown = wanted - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {sorted(unknown)}")
    selected = [c for c in RUN_ORDER if c in wanted]

    runners: dict[str, Callable[[Urls, Sizes], JsonDict]] = {
        "latency": case_latency,
        "pull": case_pull,
        "pull_huge": case_pull_huge,
        "stream_out": case_stream_out,
        "stream_in": case_stream_in,
        "open": case_open,
        "burst": case_burst,
        "server_push": case_server_push,
        "kernel": case_kernel,
    }
    started = time.perf_counter()
    load_before = os.getloadavg()
    cases: JsonDict = {}
    with bokeh_server(sizes.pull_rows, sizes.huge_rows) as urls:
        for name in selected:
            log(f"{CASE_TITLES[name]} ...")
            case_start = time.perf_counter()
            cases[name] = guarded(lambda name=name: runners[name](urls, sizes))  # type: ignore[misc]
            if "error" in cases[name]:  # the case itself failed: charge it to ours
                cases[name] = {"ours": cases[name]}
            log(f"{CASE_TITLES[name]}: {time.perf_counter() - case_start:.1f} s")

    meta = machine_meta(mode)
    meta["loadavg_1min_before"] = load_before[0]
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    report: JsonDict = {
        "meta": meta,
        "sizes": asdict(sizes),
        "seconds": time.perf_counter() - started,
        "cases": {name: cases[name] for name in CASES if name in cases},
    }
    report["ratios"] = ratios(cases)
    report["targets"] = [asdict(t) for t in evaluate(cases)]
    markdown = render(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown)
    print(markdown)

    failed = [name for name in selected if "error" in cases.get(name, {}).get("ours", {"error": 1})]
    if failed:
        log(f"ours failed in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
