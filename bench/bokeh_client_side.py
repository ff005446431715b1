"""The ``bokeh.client`` side of the benchmark, one measurement per process.

``bokeh.client`` owns a tornado IOLoop that only runs inside its blocking calls,
and it cannot run inside a Jupyter kernel, so ``run.py`` starts this script as a
plain Python subprocess for every measurement::

    python bench/bokeh_client_side.py latency http://127.0.0.1:PORT/tiny --n 50
    python bench/bokeh_client_side.py pull    http://127.0.0.1:PORT/large --max-message-size N
    python bench/bokeh_client_side.py open    http://127.0.0.1:PORT/tiny --n 100
    python bench/bokeh_client_side.py burst   http://127.0.0.1:PORT/sink --n 2000
    python bench/bokeh_client_side.py ticker  http://127.0.0.1:PORT/ticker --duration 5
    python bench/bokeh_client_side.py stream_out http://127.0.0.1:PORT/arrays_sink --chunks 100
    python bench/bokeh_client_side.py stream_in  http://127.0.0.1:PORT/streamer --duration 3

Each prints exactly one JSON object on its last stdout line. A failure of
``bokeh.client`` itself (for example a ``RecursionError`` in a burst) is caught
and reported as ``{"error": {"type": ..., "message": ...}}`` with exit status 0:
it is a result, not a crash of the benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil
from bokeh.client import ClientSession, pull_session
from bokeh.client.util import websocket_url_for_server_url
from bokeh.core.types import ID
from bokeh.document.events import DocumentChangedEvent, ModelChangedEvent
from bokeh.models import ColumnDataSource
from common import (
    RowCounter,
    big_rows,
    cpu_seconds,
    minor_faults,
    pull_record,
    stream_chunks,
    stream_record,
    time_calls,
    verify_stream,
)

JsonDict = dict[str, Any]


class _LoggedErrors(logging.Handler):
    """Collects the types of exceptions that ``bokeh.client`` hides from its caller.

    ``bokeh.client`` handles messages in IOLoop callbacks. An exception there is
    either only logged by tornado or swallowed by bokeh itself (see
    :func:`_record_read_errors`), and the caller sees a later, vaguer error such
    as "Did not get a reply ... before disconnect". ``types`` keeps the root
    cause (a ``RecursionError`` in a burst).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.types: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[0] is not None:
            self.types.append(record.exc_info[0].__name__)


_LOGGED = _LoggedErrors()
logging.getLogger("tornado.application").addHandler(_LOGGED)


def _record_read_errors(session: ClientSession) -> None:
    """Note the type of any exception raised by the session's socket reads.

    ``bokeh.client`` swallows such an exception (``_pop_message`` logs it at DEBUG
    and then treats the connection as closed by the server), so the caller only
    sees "Did not get a reply ... before disconnect". The wrapper adds one frame
    at the leaf of the call chain and changes nothing else.
    """
    socket = session._connection._socket
    if socket is None:
        return
    read = socket.read_message

    def read_message(*args: Any, **kwargs: Any) -> Any:
        try:
            return read(*args, **kwargs)
        except BaseException as exc:
            _LOGGED.types.append(type(exc).__name__)
            raise

    socket.read_message = read_message


def _error(exc: BaseException) -> JsonDict:
    error: JsonDict = {"type": type(exc).__name__, "message": str(exc)[:500]}
    if _LOGGED.types:
        error["inside_loop"] = sorted(set(_LOGGED.types))
    return {"error": error}


def case_latency(url: str, n: int, warmup: int) -> JsonDict:
    """``force_roundtrip()`` (a SERVER-INFO round trip) ``n`` times; per-request seconds."""
    session = pull_session(url=url)
    try:
        samples = time_calls(session.force_roundtrip, n, warmup)
    finally:
        session.close()
    return {"samples_s": samples}


def case_pull(url: str, warm_url: str, max_message_size: int) -> JsonDict:
    """Wall time and peak RSS growth of one ``pull_session`` of the large document."""
    warm = pull_session(url=warm_url)  # imports and lazily loaded code paths
    warm.close()
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    faults_before = minor_faults()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    session = pull_session(url=url, max_message_size=max_message_size)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_start
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    minflt = minor_faults() - faults_before
    rows = big_rows(session)
    session.close()
    return pull_record(wall, cpu, rows, rss_before, maxrss_before, maxrss_after, minflt)


def case_open(url: str, n: int) -> JsonDict:
    """``n`` sequential ``ClientSession(...).connect()`` + ``close()``; per-open seconds."""
    ws_url = websocket_url_for_server_url(url)
    samples: list[float] = []
    start_all = time.perf_counter()
    for _ in range(n):
        start = time.perf_counter()
        session = ClientSession(websocket_url=ws_url)
        session.connect()
        if not session.connected:
            raise RuntimeError("bokeh.client did not connect")
        session.close()
        samples.append(time.perf_counter() - start)
    return {"samples_s": samples, "total_s": time.perf_counter() - start_all}


def case_burst(url: str, n: int) -> JsonDict:
    """``n`` one-row ``stream()`` calls then ``force_roundtrip()``; checked by a second session."""
    session = pull_session(url=url)
    _record_read_errors(session)
    result: JsonDict = {"n": n}
    try:
        assert session.document is not None
        source = session.document.get_model_by_name("sink")
        assert isinstance(source, ColumnDataSource)
        start = time.perf_counter()
        try:
            for i in range(n):
                source.stream({"x": [i], "y": [i]})
            session.force_roundtrip()
        except BaseException as exc:  # RecursionError and friends are the result
            result.update(_error(exc))
            result["seconds_until_failure"] = time.perf_counter() - start
            return result
        seconds = time.perf_counter() - start
        result["seconds"] = seconds
        result["events_per_s"] = n / seconds
        result.update(_verify(url, session.id, n))
    finally:
        try:
            session.close()
        except BaseException as exc:
            result.setdefault("close_error", _error(exc)["error"])
    return result


def _verify(url: str, session_id: str, n: int) -> JsonDict:
    """Pull the same session again and check that it holds rows 0..n-1 in order."""
    try:
        check = pull_session(session_id=ID(session_id), url=url)
    except BaseException as exc:
        return {"verify": _error(exc)["error"]}
    try:
        assert check.document is not None
        source = check.document.get_model_by_name("sink")
        assert isinstance(source, ColumnDataSource)
        xs = list(source.data["x"])
        ys = list(source.data["y"])
    finally:
        check.close()
    expected = list(range(n))
    return {"rows_on_server": len(xs), "in_order": xs == expected and ys == expected}


def case_ticker(url: str, duration: float) -> JsonDict:
    """Arrival delay of the ticker's stamped ``Div.text`` changes for ``duration`` seconds."""
    session = pull_session(url=url)
    delays: list[float] = []

    def on_change(event: DocumentChangedEvent) -> None:
        if isinstance(event, ModelChangedEvent) and event.attr == "text" and event.new:
            delays.append(time.time() - float(event.new))

    assert session.document is not None
    session.document.on_change(on_change)
    loop = session._connection.io_loop  # bokeh.client processes messages only while it runs
    loop.call_later(duration, loop.stop)
    session._loop_until_closed()
    session.document.remove_on_change(on_change)
    return {"delays_s": delays, "duration_s": duration}


def case_stream_out(url: str, chunks: int, chunk: int, rollover: int) -> JsonDict:
    """Stream ``chunks`` numpy chunks of ``chunk`` rows, then ``force_roundtrip()``; verified."""
    session = pull_session(url=url)
    _record_read_errors(session)
    data = stream_chunks(chunks, chunk)
    result: JsonDict = {"n": chunks * chunk}
    try:
        assert session.document is not None
        source = session.document.get_model_by_name("sink")
        assert isinstance(source, ColumnDataSource)
        cpu_start, start = cpu_seconds(), time.perf_counter()
        try:
            for columns in data:
                source.stream(columns, rollover=rollover)
            session.force_roundtrip()
        except BaseException as exc:
            result.update(_error(exc))
            return result
        result.update(
            stream_record(chunks * chunk, time.perf_counter() - start, cpu_seconds() - cpu_start)
        )
        check = pull_session(session_id=ID(session.id), url=url)
        try:
            result.update(verify_stream(check.document, chunks * chunk, rollover))
        finally:
            check.close()
    finally:
        session.close()
    return result


def case_stream_in(url: str, duration: float) -> JsonDict:
    """Rows of the streamer app applied to the document per second, for ``duration`` s."""
    session = pull_session(url=url)
    counter = RowCounter()
    assert session.document is not None
    session.document.on_change(counter)
    loop = session._connection.io_loop
    loop.call_later(duration, loop.stop)
    cpu_start, start = cpu_seconds(), time.perf_counter()
    session._loop_until_closed()
    result = stream_record(counter.rows, time.perf_counter() - start, cpu_seconds() - cpu_start)
    session.document.remove_on_change(counter)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "case",
        choices=["latency", "pull", "open", "burst", "ticker", "stream_out", "stream_in"],
    )
    parser.add_argument("url", help="http URL of the app")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-message-size", type=int, default=100 * 2**20)
    parser.add_argument("--warm-url", default="", help="pull: a small app to warm up on")
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--rollover", type=int, default=100_000)
    args = parser.parse_args(argv)
    cases: dict[str, Callable[[], JsonDict]] = {
        "latency": lambda: case_latency(args.url, args.n, args.warmup),
        "pull": lambda: case_pull(args.url, args.warm_url or args.url, args.max_message_size),
        "open": lambda: case_open(args.url, args.n),
        "burst": lambda: case_burst(args.url, args.n),
        "ticker": lambda: case_ticker(args.url, args.duration),
        "stream_out": lambda: case_stream_out(args.url, args.chunks, args.chunk, args.rollover),
        "stream_in": lambda: case_stream_in(args.url, args.duration),
    }
    try:
        result = cases[args.case]()
    except BaseException as exc:
        result = _error(exc)
    result["impl"] = "bokeh"
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
