"""``/zero_copy``: a ColumnDataSource ``src`` whose columns travel as large binary buffers.

``x`` is ``arange(200_000)`` float64 and ``y`` is ``arange(200_000)`` int32 (1.6 MB
and 0.8 MB: big enough for the client's receive path to hand them over as
buffers that pulled arrays view without a copy). Setting ``cmd.text`` makes the
server change ``src`` in place: ``"patch"`` sets ``x[1] = -2``, ``"stream"``
appends 70,000 rows (``x`` continuing the count, as binary buffers again).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

ROWS = 200_000

doc = curdoc()
src = ColumnDataSource(
    name="src",
    data={"x": np.arange(ROWS, dtype=np.float64), "y": np.arange(ROWS, dtype=np.int32)},
)
cmd = Div(name="cmd", text="")


def _on_cmd(attr: str, old: Any, new: Any) -> None:
    if new == "patch":
        src.patch({"x": [(1, -2.0)]})
    elif new == "stream":
        start = len(src.data["x"])
        more = np.arange(start, start + 70_000)
        src.stream({"x": more.astype(np.float64), "y": more.astype(np.int32)})


cmd.on_change("text", _on_cmd)
doc.add_root(src)
doc.add_root(cmd)
