"""``/sink``: an empty receptacle that clients write into and read back.

Roots:
    sink (ColumnDataSource): columns ``x`` and ``y``, both empty.
    status (Div): empty text.

The server adds no logic: one client streams or patches, a second client (or a
re-pull) checks what the server's document holds.
"""

from __future__ import annotations

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

doc = curdoc()
doc.title = "sink"
doc.add_root(ColumnDataSource(name="sink", data={"x": [], "y": []}))
doc.add_root(Div(name="status", text=""))
