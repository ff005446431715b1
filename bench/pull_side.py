"""Case 2 for ``ours`` and ``floor``: one pull of the large document in a fresh process.

::

    python bench/pull_side.py ours  http://127.0.0.1:PORT/large --warm-url http://.../tiny
    python bench/pull_side.py floor http://127.0.0.1:PORT/large --warm-url http://.../tiny

The process first pulls the small ``warm`` app once (imports, lazily loaded code,
the engine thread), then takes its baseline, then times one pull of the large
app. Peak memory is the high-water mark (``ru_maxrss``) after the pull minus the
resident size just before it. Prints one JSON object, as ``bokeh_client_side.py
pull`` does for ``bokeh.client``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from typing import Any

import bokeh.models  # noqa: F401  (imported before the baseline, as by the other sides)
import numpy as np
import psutil
from common import big_rows, cpu_seconds, minor_faults, pull_record
from floor import RawSession

from bokeh_nb_client import pull_session
from bokeh_nb_client.protocol.urls import websocket_url_for_server_url

JsonDict = dict[str, Any]


def _warm_ours(url: str, max_message_size: int) -> None:
    session = pull_session(url=url, max_message_size=max_message_size)
    session.close()


def _pull_floor(url: str) -> tuple[float, float, int, int]:
    """Wall and CPU seconds until the whole reply is in, rows, and ``ru_maxrss`` then."""

    async def pull() -> tuple[float, float, list[bytes], int]:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        raw = await RawSession.open(websocket_url_for_server_url(url))
        try:
            reply = await raw.request("PULL-DOC-REQ")
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        finally:
            await raw.close()
        return wall, cpu, reply.buffers, maxrss

    wall, cpu, buffers, maxrss = asyncio.run(pull())
    rows = len(np.frombuffer(buffers[0], dtype=np.float64)) if buffers else 0
    return wall, cpu, rows, maxrss


def measure(impl: str, url: str, warm_url: str, max_message_size: int) -> JsonDict:
    """Warm up on ``warm_url``, then time one pull of ``url`` and its memory peak."""
    if impl == "ours":
        _warm_ours(warm_url, max_message_size)
    else:
        _pull_floor(warm_url)
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    faults_before = minor_faults()
    if impl == "ours":
        # Timed up to a usable document; close() is outside the timing.
        start, cpu_start = time.perf_counter(), cpu_seconds()
        session = pull_session(url=url, max_message_size=max_message_size)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        rows = big_rows(session)
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        session.close()
    else:
        wall, cpu, rows, maxrss_after = _pull_floor(url)  # close() is outside the timing
    minflt = minor_faults() - faults_before
    return pull_record(wall, cpu, rows, rss_before, maxrss_before, maxrss_after, minflt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", choices=["ours", "floor"])
    parser.add_argument("url")
    parser.add_argument("--warm-url", required=True)
    parser.add_argument("--max-message-size", type=int, default=100 * 2**20)
    args = parser.parse_args(argv)
    try:
        result = measure(args.impl, args.url, args.warm_url, args.max_message_size)
    except BaseException as exc:
        result = {"error": {"type": type(exc).__name__, "message": str(exc)[:500]}}
    result["impl"] = args.impl
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
