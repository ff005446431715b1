"""The 32 MB data set of the ``large`` app, built once per server process.

``bokeh serve`` re-runs an app script for every session, but imported modules
stay in ``sys.modules``, so the arrays are generated only once. Each session gets
its own copies because ``ColumnDataSource.patch`` edits numpy columns in place.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = ["ROWS", "big_columns"]

#: Rows per column: two float64 columns of this length hold 32 MB.
ROWS = 2_000_000


@cache
def _columns() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    x = np.arange(ROWS, dtype=np.float64)
    y = np.random.default_rng(0).random(ROWS)
    return x, y


def big_columns() -> dict[str, npt.NDArray[np.float64]]:
    """Return fresh copies of the ``x`` (0, 1, 2, ...) and ``y`` (seeded random) columns."""
    x, y = _columns()
    return {"x": x.copy(), "y": y.copy()}
