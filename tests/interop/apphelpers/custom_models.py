"""A Python-only Bokeh model with a ``Bytes`` property, for push/pull tests.

The model has no ``__implementation__``, so BokehJS cannot render it; it exists
only to travel over the websocket. Its qualified name is
``apphelpers.custom_models.BytesHolder`` (Bokeh derives it from the module), so
server and client must both import it as ``apphelpers.custom_models``.
"""

from __future__ import annotations

from bokeh.core.properties import Bytes, Int
from bokeh.model import Model

__all__ = ["BytesHolder"]


class BytesHolder(Model):
    """A model holding an integer and a bytes payload."""

    foo = Int(0, help="An arbitrary integer.")
    data = Bytes(default=b"", help="An arbitrary binary payload (sent as a buffer).")
