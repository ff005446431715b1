"""``/tiny``: the smallest useful document (one Div), for round trips and session opening."""

from __future__ import annotations

from bokeh.io import curdoc
from bokeh.models import Div

curdoc().add_root(Div(name="div", text="hello"))
