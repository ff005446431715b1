"""``/large``: one ColumnDataSource ``big`` with two float64 numpy columns.

The row count comes from the server's ``BENCH_ROWS`` environment variable
(2,000,000 by default: 2 x 16 MB = 32 MB of binary buffers). Every session gets
freshly generated arrays.
"""

from __future__ import annotations

import os

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

rows = int(os.environ.get("BENCH_ROWS", "2000000"))
x = np.arange(rows, dtype=np.float64)
y = np.random.default_rng(0).random(rows)
curdoc().add_root(ColumnDataSource(name="big", data={"x": x, "y": y}))
