"""``/flood``: a server that changes a big data source faster than a client applies it.

Every millisecond (or ``period_ms``) a periodic callback replaces 2,000 values of
the 200,000-row column ``source.data["v"]`` with ``source.patch`` and bumps
``count.text``, as bokeh's ``contour_animated`` example does with its contours:
a steady stream of patches that never pauses.
"""

from __future__ import annotations

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

ROWS = 200_000
PATCH_ROWS = 2_000

doc = curdoc()
source = ColumnDataSource(name="source", data={"v": np.zeros(ROWS)})
count = Div(name="count", text="0")
state = {"n": 0}


def _period_ms() -> int:
    request = doc.session_context.request if doc.session_context else None
    values = request.arguments.get("period_ms", []) if request is not None else []
    return int(values[0]) if values else 1


def _tick() -> None:
    n = state["n"] = state["n"] + 1
    start = (n * PATCH_ROWS) % ROWS
    source.patch({"v": [(slice(start, start + PATCH_ROWS), np.full(PATCH_ROWS, float(n)))]})
    count.text = str(n)


doc.add_root(source)
doc.add_root(count)
doc.add_periodic_callback(_tick, _period_ms())
