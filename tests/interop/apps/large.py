"""``/large``: one ColumnDataSource ``big`` with 32 MB of float64 data.

``big.data["x"]`` is ``arange(2_000_000)`` and ``big.data["y"]`` is
``default_rng(0).random(2_000_000)``; both are float64 numpy arrays, so each
travels as a 16 MB binary buffer (PROTOCOL.md §1.9). The arrays are generated
once per server process in :mod:`apphelpers.big_data`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bokeh.io import curdoc
from bokeh.models import ColumnDataSource

# bokeh serve would treat a helper placed in apps/ as one more app, so helpers
# live in tests/interop/apphelpers, imported as the package ``apphelpers``.
_INTEROP_DIR = str(Path(__file__).resolve().parents[1])
if _INTEROP_DIR not in sys.path:
    sys.path.insert(0, _INTEROP_DIR)

from apphelpers.big_data import big_columns  # noqa: E402

doc = curdoc()
doc.title = "large"
doc.add_root(ColumnDataSource(name="big", data=big_columns()))
