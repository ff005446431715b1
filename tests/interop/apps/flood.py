"""``/flood``: a server that changes a data source faster than a client applies it.

As bokeh's ``contour_animated`` example does: a periodic callback (every
millisecond, or ``period_ms``) replaces ``source.data`` with 50 new "contours"
(ragged columns: lists of 400-point arrays), and bumps ``count.text``. The server
sends this cheaply (arrays go as binary buffers), and it never pauses.
"""

from __future__ import annotations

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

LINES = 50
POINTS = 400

doc = curdoc()
rng = np.random.default_rng(0)
source = ColumnDataSource(name="source", data={"xs": [], "ys": []})
count = Div(name="count", text="0")
state = {"n": 0}


def _period_ms() -> int:
    request = doc.session_context.request if doc.session_context else None
    values = request.arguments.get("period_ms", []) if request is not None else []
    return int(values[0]) if values else 1


def _tick() -> None:
    state["n"] += 1
    source.data = {
        "xs": [rng.random(POINTS) for _ in range(LINES)],
        "ys": [rng.random(POINTS) for _ in range(LINES)],
    }
    count.text = str(state["n"])


doc.add_root(source)
doc.add_root(count)
doc.add_periodic_callback(_tick, _period_ms())
