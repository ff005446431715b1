"""``/basic``: a few models and two server-side reactions to client changes.

Roots:
    div (Div): text "hello"; becomes "clicked" when ``btn`` is clicked.
    btn (Button): its ``button_click`` event sets ``div.text``.
    src (ColumnDataSource): ``x`` float64 0..3 (a numpy buffer), ``y`` [1, 2, 3, 4].
    slider (Slider): 0..100, value 0; a change sets ``echo.text`` to ``"slider=<value>"``.
    echo (Div): the indirect reaction to a client-side slider change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.events import ButtonClick
from bokeh.io import curdoc
from bokeh.models import Button, ColumnDataSource, Div, Slider

doc = curdoc()
doc.title = "basic"

div = Div(name="div", text="hello")
btn = Button(name="btn", label="click me")
src = ColumnDataSource(name="src", data={"x": np.arange(4, dtype="float64"), "y": [1, 2, 3, 4]})
slider = Slider(name="slider", start=0, end=100, value=0, step=1, title="slider")
echo = Div(name="echo", text="")


def _on_click(event: ButtonClick) -> None:
    div.text = "clicked"


def _on_slider(attr: str, old: Any, new: Any) -> None:
    echo.text = f"slider={new}"


btn.on_event(ButtonClick, _on_click)
slider.on_change("value", _on_slider)

for root in (div, btn, src, slider, echo):
    doc.add_root(root)
