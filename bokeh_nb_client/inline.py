"""Where ``show()`` can display a session inline instead of opening a browser.

The synchronous API sits below the Jupyter layer and must not import it. When
running inside an IPython kernel (``ipykernel`` is loaded), ``show_inline`` loads
the Jupyter front end by name, as a plugin, and asks it to display the session
in the current cell's output; elsewhere it declines and the caller opens a
browser, as ``bokeh.client`` does.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["show_inline"]

_FRONT_END = "bokeh_nb_client.jupyter.display"


def show_inline(app_url: str, session_id: str) -> bool:
    """Display the session inline if a notebook front end can; return whether it did."""
    if "ipykernel" not in sys.modules:
        return False
    front_end = importlib.import_module(_FRONT_END)
    shown: bool = front_end.show_in_notebook(app_url, session_id)
    return shown
