"""``/whoami``: which ``bokeh serve`` process holds a session, and what it saw of the proxy.

Roots:
    whoami (Div): JSON text ``{"upstream": ..., "pid": ..., "protocol": ...,
        "forwarded_proto": ..., "remote_ip": ...}``: the server's name (the
        ``DEPLOY_UPSTREAM`` environment variable), its pid, and the scheme and
        client address tornado derived from the request that created the session
        (with ``--use-xheaders`` these come from nginx's ``X-Forwarded-Proto`` and
        ``X-Real-IP``).
    probe (Slider): 0..1000; a change sets ``echo.text`` to ``"<upstream>:<value>"``.
    echo (Div): the server's reaction to ``probe``, naming the process that made it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bokeh.io import curdoc
from bokeh.models.widgets import Div, Slider

doc = curdoc()
doc.title = "whoami"
upstream = os.environ.get("DEPLOY_UPSTREAM", "unnamed")

context = doc.session_context
request: Any = getattr(context, "request", None)
headers: dict[str, Any] = dict(request.headers) if request is not None else {}
facts = {
    "upstream": upstream,
    "pid": os.getpid(),
    "protocol": getattr(request, "protocol", None),
    "forwarded_proto": headers.get("X-Forwarded-Proto"),
    "remote_ip": getattr(request, "remote_ip", None),
}

whoami = Div(name="whoami", text=json.dumps(facts, sort_keys=True))
probe = Slider(name="probe", start=0, end=1000, value=0, step=1, title="probe")
echo = Div(name="echo", text="")


def _on_probe(attr: str, old: Any, new: Any) -> None:
    echo.text = f"{upstream}:{new}"


probe.on_change("value", _on_probe)
for root in (whoami, probe, echo):
    doc.add_root(root)
