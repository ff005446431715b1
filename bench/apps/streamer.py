"""``/streamer``: the server streams 10,000-row float64 chunks into ``feed``, every 5 ms.

A periodic callback streams one chunk (``x`` counts rows, ``y`` is the send
time) with a rollover of 100,000 rows: up to 2,000,000 rows/s offered, more than
this server manages, so the rate is whatever it can do (a tighter loop would
let tornado's write buffer grow without bound for a slow client). It skips its
work while no client is connected. Case 8 measures the rows each client applies
per second.
"""

from __future__ import annotations

import time

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

CHUNK = 10_000
ROLLOVER = 100_000

doc = curdoc()
feed = ColumnDataSource(
    name="feed", data={"x": np.zeros(0, dtype=np.float64), "y": np.zeros(0, dtype=np.float64)}
)
doc.add_root(feed)
sent = [0]


def _step() -> None:
    session = getattr(doc.session_context, "_session", None)
    if session is not None and session.connection_count == 0:
        return
    start = sent[0]
    x = np.arange(start, start + CHUNK, dtype=np.float64)
    y = np.full(CHUNK, time.time())
    sent[0] = start + CHUNK
    feed.stream({"x": x, "y": y}, rollover=ROLLOVER)


doc.add_periodic_callback(_step, 5)
