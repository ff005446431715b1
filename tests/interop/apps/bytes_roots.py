"""``/bytes_roots``: two roots of the Python-only model ``BytesHolder``.

Roots:
    a (BytesHolder): ``foo=42``, ``data=b"\\x00\\x01\\x02"``.
    b (BytesHolder): ``foo=43``, ``data=b""``.

A client must import ``apphelpers.custom_models`` (under exactly that name) before
pulling, or it cannot decode the models. BokehJS cannot render them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bokeh.io import curdoc

# See large.py: helpers are imported as the package ``apphelpers``.
_INTEROP_DIR = str(Path(__file__).resolve().parents[1])
if _INTEROP_DIR not in sys.path:
    sys.path.insert(0, _INTEROP_DIR)

from apphelpers.custom_models import BytesHolder  # noqa: E402

doc = curdoc()
doc.title = "bytes_roots"
doc.add_root(BytesHolder(name="a", foo=42, data=b"\x00\x01\x02"))
doc.add_root(BytesHolder(name="b", foo=43))
