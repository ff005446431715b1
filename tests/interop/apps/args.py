"""``/args``: shows the query arguments of the request that created the session.

Root ``args`` (Div) has as text ``json.dumps({name: [value, ...]}, sort_keys=True)``
of ``session_context.request.arguments`` with the byte values decoded. Arguments
count only on the connection that creates the session (PROTOCOL.md §1.2).
"""

from __future__ import annotations

import json

from bokeh.io import curdoc
from bokeh.models import Div

doc = curdoc()
doc.title = "args"

_request = doc.session_context.request if doc.session_context else None
_arguments: dict[str, list[bytes]] = dict(_request.arguments) if _request is not None else {}
_decoded = {name: [value.decode() for value in values] for name, values in _arguments.items()}

doc.add_root(Div(name="args", text=json.dumps(_decoded, sort_keys=True)))
