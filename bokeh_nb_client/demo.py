"""The demo: ``python -m bokeh_nb_client.demo``.

Starts ``bokeh serve`` with the bundled instrument-monitor app on 127.0.0.1,
then drives a session with the synchronous, ``bokeh.client``-compatible API and
prints what happened at each step: pull, inspect, change a value (and see the
server's reaction), stream rows, read server info, watch server-side changes
arrive, check from a second session that the server holds everything, close.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div, Slider

from . import ClientSession, pull_session
from ._bokeh import Document
from .local_server import BUNDLED_APP, local_bokeh_server

M = TypeVar("M")


def _find(doc: Document, name: str, kind: type[M]) -> M:
    model = doc.select_one({"name": name})
    if not isinstance(model, kind):
        raise LookupError(f"the app has no {kind.__name__} named {name!r}")
    return model


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _until(session: ClientSession, predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Round-trip until ``predicate()`` holds; return the seconds it took."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the server did not make the expected change in time")
        session.force_roundtrip()
    return time.perf_counter() - started


def run(base_url: str, rows: int) -> None:
    """Drive one scripted session against the monitor app at ``base_url``."""
    app_url = f"{base_url}/monitor"
    _step(f"pull_session(url={app_url!r})")
    started = time.perf_counter()
    session = pull_session(url=app_url)
    doc = session.document
    assert doc is not None
    ms = 1000 * (time.perf_counter() - started)
    print(f"connected in {ms:.1f} ms; session id {session.id[:8]}…")
    print(f"document {doc.title!r} with {len(doc.roots)} roots and {len(list(doc.models))} models")

    _step("request_server_info()")
    info = session.request_server_info()
    print(f"server runs bokeh {info['version_info']['bokeh']}")

    _step("round-trip latency (force_roundtrip x 200)")
    started = time.perf_counter()
    for _ in range(200):
        session.force_roundtrip()
    print(f"mean {1000 * (time.perf_counter() - started) / 200:.3f} ms per request/reply")

    _step("change the setpoint; the app reacts on the server")
    setpoint = _find(doc, "setpoint", Slider)
    status = _find(doc, "status", Div)
    setpoint.value = 7.5
    session.force_roundtrip()
    print(f"status div now says {status.text!r} (set by the server in reply)")

    _step("server-side changes arrive (the app's periodic callback streams readings)")
    readings = _find(doc, "readings", ColumnDataSource)
    before = len(readings.data["t"])
    waited = _until(session, lambda: len(readings.data["t"]) >= before + 3)
    print(f"{len(readings.data['t']) - before} new readings arrived in {waited:.2f} s")

    _step(f"stream {rows} single-row updates into 'uploads'")
    uploads = _find(doc, "uploads", ColumnDataSource)
    started = time.perf_counter()
    for i in range(rows):
        uploads.stream({"x": [i], "y": [i % 10]})
    session.force_roundtrip()
    elapsed = time.perf_counter() - started
    rate = rows / elapsed
    print(f"{rows} stream() calls acknowledged by the server in {elapsed:.2f} s ({rate:,.0f}/s)")

    _step("a second session on the same server session checks what the server holds")
    with pull_session(session_id=session.id, url=app_url) as observer:
        assert observer.document is not None
        held = _find(observer.document, "uploads", ColumnDataSource).data["x"]
        in_order = list(held) == list(range(rows))
        print(f"server holds {len(held)} uploaded rows, in order: {in_order}")
        print(f"server's setpoint: {_find(observer.document, 'setpoint', Slider).value}")

    _step("close()")
    session.close()
    print(f"connected: {session.connected}; final status: {session.status.state.value}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m bokeh_nb_client.demo`` (and ``bokeh-nb-demo``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows to stream (default 10000)")
    parser.add_argument("--url", help="use a running server (base URL serving /monitor) instead")
    args = parser.parse_args(argv)
    if args.url:
        run(args.url.rstrip("/"), args.rows)
        return
    print(f"starting bokeh serve {BUNDLED_APP.name} on 127.0.0.1 ...", flush=True)
    with local_bokeh_server([BUNDLED_APP]) as base_url:
        print(f"server up at {base_url}/monitor")
        run(base_url, args.rows)
    print("\nserver stopped; demo done.")


if __name__ == "__main__":
    main()
