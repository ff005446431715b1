"""A small Panel app for the interop test (served by ``panel serve``).

A slider whose value the server squares into a text widget, and a
ColumnDataSource whose streamed rows the server counts into a second one.
"""

import panel as pn
from bokeh.models import ColumnDataSource

slider = pn.widgets.IntSlider(name="n", start=0, end=100, value=1)
square = pn.widgets.StaticText(name="square", value="1")
rows = pn.widgets.StaticText(name="rows", value="0")
source = ColumnDataSource(data={"x": [], "y": []}, name="stream_source")


def react(event: object) -> None:
    square.value = str(slider.value**2)


def count_rows(attr: str, old: object, new: object) -> None:
    rows.value = str(len(source.data["x"]))


slider.param.watch(react, "value")
source.on_change("data", count_rows)

layout = pn.Column(slider, square, rows)
layout.servable()
pn.state.curdoc.add_root(source)
