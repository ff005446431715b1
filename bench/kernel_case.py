"""Case 6: does a kernel stay responsive while live sessions run inside it?

A real ipykernel is started with ``jupyter_client.KernelManager``. From the
client side, ``1+1`` is executed many times and the execute_request ->
execute_reply latency is recorded:

1. ``baseline``: the kernel does nothing else.
2. ``loaded``: in the kernel, one session (sync API, as a user would type it in a
   cell) mirrors the ticker app, whose server callback changes the document every
   10 ms, and a second session (async API) has a task on the kernel's loop that
   calls ``source.stream()`` with one row 1,000 times a second (10 rows every
   10 ms) into the sink app.

Afterwards the kernel reports how many rows it streamed and ticks it applied, so
the load is known to have been real. Finally ``bokeh.client`` is tried once in
the same kernel and its error text is kept.
"""

from __future__ import annotations

import ast
import json
import queue
import tempfile
import time
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

JsonDict = dict[str, Any]

#: Cell that starts the load. ``{ticker}`` and ``{sink}`` are http app URLs.
_START_LOAD = """
import asyncio, time
from bokeh.document.events import ModelChangedEvent
from bokeh_nb_client import pull_session, pull_session_async

_bench = {{"ticks": 0, "rows": 0}}
_bench_ticker = pull_session(url={ticker!r})

def _bench_on_tick(event):
    if isinstance(event, ModelChangedEvent) and event.attr == "text":
        _bench["ticks"] += 1

_bench_ticker.document.on_change(_bench_on_tick)
_bench_sink = await pull_session_async(url={sink!r})
_bench_source = _bench_sink.document.get_model_by_name("sink")

async def _bench_stream():
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        for _ in range(10):
            n = _bench["rows"]
            _bench_source.stream({{"x": [n], "y": [n]}})
            _bench["rows"] = n + 1
        due += 0.01
        await asyncio.sleep(max(0.0, due - loop.time()))

_bench_task = asyncio.get_running_loop().create_task(_bench_stream())
"""

#: Cell run just before the loaded measurement: where the counters stood.
_MARK_LOAD = """
_bench_mark = (time.perf_counter(), _bench["rows"], _bench["ticks"])
"""

#: Cell run just after it: what happened in between.
_LOAD_STATS = """
import json as _json
_bench_stats = _json.dumps({
    "seconds": time.perf_counter() - _bench_mark[0],
    "rows": _bench["rows"] - _bench_mark[1],
    "ticks": _bench["ticks"] - _bench_mark[2],
    "task_alive": not _bench_task.done(),
})
"""

_STOP_LOAD = """
_bench_task.cancel()
await _bench_sink.force_roundtrip()
await _bench_sink.close()
_bench_ticker.close()
"""

#: Cell that starts the numpy stream load: a sync-API session on the streamer app,
#: whose server streams 10,000-row float64 chunks as fast as it can. ``{streamer}``
#: is its http URL.
_START_STREAM_IN = """
import time
from bokeh.document.events import ColumnsStreamedEvent
_bench_in = {{"rows": 0}}
_bench_streamer = pull_session(url={streamer!r})
def _bench_on_rows(event):
    if isinstance(event, ColumnsStreamedEvent):
        _bench_in["rows"] += len(event.data["x"])
_bench_streamer.document.on_change(_bench_on_rows)
"""

_MARK_STREAM_IN = """
_bench_in_mark = (time.perf_counter(), _bench_in["rows"])
"""

_STREAM_IN_STATS = """
import json as _json
_bench_stats = _json.dumps({
    "seconds": time.perf_counter() - _bench_in_mark[0],
    "rows": _bench_in["rows"] - _bench_in_mark[1],
})
"""

_STOP_STREAM_IN = """
_bench_streamer.close()
"""

_TRY_BOKEH_CLIENT = """
from bokeh.client import pull_session as _bokeh_pull_session
_bokeh_session = _bokeh_pull_session(url={ticker!r})
"""


class KernelError(RuntimeError):
    """A setup cell failed in the kernel."""


def _execute(kc: BlockingKernelClient, code: str, timeout: float = 60.0) -> JsonDict:
    reply: JsonDict = kc.execute(code, reply=True, timeout=timeout, store_history=False)
    content: JsonDict = reply["content"]
    return content


def _run_ok(kc: BlockingKernelClient, code: str, timeout: float = 60.0) -> JsonDict:
    content = _execute(kc, code, timeout)
    if content["status"] != "ok":
        raise KernelError(f"{content.get('ename')}: {content.get('evalue')}")
    return content


def _drain_iopub(kc: BlockingKernelClient) -> None:
    while True:
        try:
            kc.get_iopub_msg(timeout=0)
        except queue.Empty:
            return


def _latencies(kc: BlockingKernelClient, n: int) -> list[float]:
    samples: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        _execute(kc, "1+1", timeout=30)
        samples.append(time.perf_counter() - start)
        _drain_iopub(kc)
    return samples


def run(
    ticker_url: str, sink_url: str, n: int, warmup: int = 10, streamer_url: str | None = None
) -> JsonDict:
    """Measure baseline and loaded execute latency; try bokeh.client once.

    Returns ``{"baseline_s": [...], "loaded_s": [...], "load": {...},
    "bokeh_client_error": "..."}``, plus ``"stream_in_s"`` and ``"stream_in"``
    (latencies while the kernel applies the streamer app's numpy chunks, and the
    rows it applied) when ``streamer_url`` is given.
    """
    km = KernelManager(kernel_name="python3")
    with tempfile.TemporaryFile() as kernel_log:
        km.start_kernel(stdout=kernel_log, stderr=kernel_log)
        try:
            return _measure(km, ticker_url, sink_url, n, warmup, streamer_url)
        except BaseException as exc:
            kernel_log.seek(0)
            tail = kernel_log.read().decode("utf-8", "replace")[-2000:]
            raise KernelError(f"{type(exc).__name__}: {exc}\nkernel output:\n{tail}") from exc


def _measure(
    km: KernelManager,
    ticker_url: str,
    sink_url: str,
    n: int,
    warmup: int,
    streamer_url: str | None,
) -> JsonDict:
    kc = km.client()
    kc.start_channels()
    result: JsonDict = {}
    try:
        kc.wait_for_ready(timeout=60)
        _latencies(kc, warmup)
        result["baseline_s"] = _latencies(kc, n)

        _run_ok(kc, _START_LOAD.format(ticker=ticker_url, sink=sink_url))
        time.sleep(1.0)  # let the load reach its steady state
        _latencies(kc, warmup)
        _run_ok(kc, _MARK_LOAD)
        result["loaded_s"] = _latencies(kc, n)
        result["load"] = _load_stats(kc)
        _run_ok(kc, _STOP_LOAD)
        if streamer_url is not None:
            _run_ok(kc, _START_STREAM_IN.format(streamer=streamer_url))
            time.sleep(0.5)
            _latencies(kc, warmup)
            _run_ok(kc, _MARK_STREAM_IN)
            result["stream_in_s"] = _latencies(kc, n)
            _run_ok(kc, _STREAM_IN_STATS)
            text = _execute_with_expression(kc, "_bench_stats")["user_expressions"]["value"]
            result["stream_in"] = json.loads(ast.literal_eval(text["data"]["text/plain"]))
            _run_ok(kc, _STOP_STREAM_IN)
        result["bokeh_client_error"] = _try_bokeh_client(kc, ticker_url)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return result


def _try_bokeh_client(kc: BlockingKernelClient, ticker_url: str) -> str | None:
    """Run ``bokeh.client.pull_session`` in the kernel; its error text, or None if it worked."""
    try:
        content = _execute(kc, _TRY_BOKEH_CLIENT.format(ticker=ticker_url), timeout=60)
    except TimeoutError:
        return "hung: no execute_reply within 60 s"
    if content["status"] == "ok":
        return None
    return f"{content.get('ename')}: {content.get('evalue')}"


def _load_stats(kc: BlockingKernelClient) -> JsonDict:
    """Evaluate the kernel's load counters (a JSON string) through user_expressions."""
    _run_ok(kc, _LOAD_STATS)
    content = _execute_with_expression(kc, "_bench_stats")
    text = content["user_expressions"]["value"]["data"]["text/plain"]
    stats: JsonDict = json.loads(ast.literal_eval(text))
    return stats


def _execute_with_expression(kc: BlockingKernelClient, expression: str) -> JsonDict:
    reply: JsonDict = kc.execute(
        "", reply=True, timeout=30, store_history=False, user_expressions={"value": expression}
    )
    content: JsonDict = reply["content"]
    return content
