"""``/ticker``: a server-side periodic callback, for server-to-client latency tests.

Every period (10 ms, or the ``period_ms`` argument of the session-creating request,
for example ``ws://.../ticker/ws?period_ms=50``) the callback:

* sets ``clock.text`` to ``repr(time.time())`` (the server's wall clock),
* increments ``count.text`` ("0", "1", ...),
* streams one row ``{"t": [time], "n": [count]}`` into ``ticks`` (rollover 1000).
"""

from __future__ import annotations

import time

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource, Div

DEFAULT_PERIOD_MS = 10

doc = curdoc()
doc.title = "ticker"


def _period_ms() -> int:
    request = doc.session_context.request if doc.session_context else None
    values = request.arguments.get("period_ms", []) if request is not None else []
    return int(values[0]) if values else DEFAULT_PERIOD_MS


clock = Div(name="clock", text="")
count = Div(name="count", text="0")
ticks = ColumnDataSource(name="ticks", data={"t": [], "n": []})
state = {"n": 0}


def _tick() -> None:
    now = time.time()
    state["n"] += 1
    clock.text = repr(now)
    count.text = str(state["n"])
    ticks.stream({"t": [now], "n": [state["n"]]}, rollover=1000)


for root in (clock, count, ticks):
    doc.add_root(root)
doc.add_periodic_callback(_tick, _period_ms())
