"""A small instrument monitor: the Bokeh app bundled with bokeh_nb_client.

Served by ``python -m bokeh_nb_client.demo`` (and usable with ``bokeh serve``
directly). Roots, each with a ``name`` so clients can find them:

* ``title`` (Div): a heading that clients may change.
* ``readings`` (ColumnDataSource ``t``, ``value``): a server-side periodic
  callback appends one simulated reading every 200 ms (last 500 kept).
* ``setpoint`` (Slider): the target value; the server echoes it in ``status``.
* ``status`` (Div): the server's reaction to a setpoint change.
* ``uploads`` (ColumnDataSource ``x``, ``y``): empty; clients stream into it.
* ``plot`` (figure): readings over time.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, Slider
from bokeh.plotting import figure

doc = curdoc()
doc.title = "Instrument monitor"

title = Div(name="title", text="<b>Instrument monitor</b>")
readings = ColumnDataSource(name="readings", data={"t": [], "value": []})
setpoint = Slider(name="setpoint", start=0, end=10, value=5, step=0.5, title="Setpoint")
status = Div(name="status", text="setpoint 5.0")
uploads = ColumnDataSource(name="uploads", data={"x": [], "y": []})

plot = figure(name="plot", height=250, width=600, title="Readings")
plot.line("t", "value", source=readings)
plot.scatter("x", "y", source=uploads, color="orange")

_start = time.time()


def _read_instrument() -> None:
    t = time.time() - _start
    value = setpoint.value + math.sin(t)
    readings.stream({"t": [t], "value": [value]}, rollover=500)


def _on_setpoint(attr: str, old: Any, new: Any) -> None:
    status.text = f"setpoint {float(new):.1f}"


setpoint.on_change("value", _on_setpoint)
doc.add_periodic_callback(_read_instrument, 200)
doc.add_root(column(title, setpoint, status, plot, name="layout"))
doc.add_root(uploads)
