"""``/huge``: like ``/large``, with ``BENCH_HUGE_ROWS`` rows (32,000,000 by default: 512 MB).

Case 2b pulls it with ``max_message_size`` raised; every session generates its
own arrays, so it is only ever pulled a few times per run.
"""

from __future__ import annotations

import os

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

rows = int(os.environ.get("BENCH_HUGE_ROWS", "32000000"))
x = np.arange(rows, dtype=np.float64)
y = np.ones(rows, dtype=np.float64)
curdoc().add_root(ColumnDataSource(name="big", data={"x": x, "y": y}))
