"""``/ticker``: every 10 ms a server callback sets ``clock.text`` to ``repr(time.time())``.

Clients on the same machine compute arrival delay = receive time - stamped time.

A session nobody is connected to skips the work (the benchmark server keeps
abandoned sessions alive for the whole run, so earlier cases' tickers would
otherwise keep loading the server). ``_session`` is private bokeh API; without
it the callback simply always ticks.
"""

from __future__ import annotations

import time

from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
clock = Div(name="clock", text="")


def _tick() -> None:
    session = getattr(doc.session_context, "_session", None)
    if session is not None and session.connection_count == 0:
        return
    clock.text = repr(time.time())


doc.add_root(clock)
doc.add_periodic_callback(_tick, 10)
