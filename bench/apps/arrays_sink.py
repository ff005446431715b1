"""``/arrays_sink``: an empty ColumnDataSource ``sink`` with float64 numpy columns ``x``, ``y``.

Case 7 streams 10,000-row numpy chunks into it (binary buffers on the wire).
"""

from __future__ import annotations

import numpy as np
from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

empty = np.zeros(0, dtype=np.float64)
curdoc().add_root(ColumnDataSource(name="sink", data={"x": empty, "y": empty.copy()}))
