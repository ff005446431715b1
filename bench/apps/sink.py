"""``/sink``: an empty ColumnDataSource ``sink`` (columns ``x``, ``y``) that clients stream into."""

from __future__ import annotations

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

curdoc().add_root(ColumnDataSource(name="sink", data={"x": [], "y": []}))
