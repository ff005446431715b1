"""``BokehClient``: the extension's settings, as a traitlets ``Configurable``.

Set them in a cell with ``%config``::

    %config BokehClient.default_url = "http://dashboards.example:5006/"
    %config BokehClient.timeout = 10
    %config BokehClient.show = "browser"
    %config BokehClient.view_url = "direct"      # or "proxy", or "auto" (the default)
    %config BokehClient                       # list every setting with its help

or permanently in an IPython profile (``ipython_config.py``)::

    c.BokehClient.default_url = "http://localhost:5006/"

The extension registers one instance with the shell when it loads. The magics read
it on every call, so a change applies to the next magic at once.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Enum, Float, TraitError, Unicode, validate
from traitlets.config import Configurable

__all__ = ["BokehClient"]


class BokehClient(Configurable):
    """Settings of the bokeh_nb_client magics and of ``show()`` in a notebook."""

    default_url = Unicode(
        "http://localhost:5006/",
        help=(
            "Server URL used when a magic is given no URL. A bare app name given to "
            "a magic (`%bokeh_pull basic`) is resolved against it."
        ),
    ).tag(config=True)

    timeout = Float(
        30.0,
        help="Seconds allowed for connecting and for each request of sessions the magics open.",
    ).tag(config=True)

    show = Enum(
        ["auto", "inline", "browser"],
        default_value="auto",
        help=(
            "Where show() and %bokeh_show display a session: 'inline' in the cell's "
            "output, 'browser' in a browser tab (as bokeh.client does), or 'auto': "
            "inline when running in a Jupyter kernel, a browser otherwise."
        ),
    ).tag(config=True)

    view_url = Enum(
        ["auto", "proxy", "direct"],
        default_value="auto",
        help=(
            "Where an inline view loads the session from. 'direct': the Bokeh "
            "server's own URL (the browser must reach it, and the server must accept "
            "the page's websocket origin). 'proxy': through the Jupyter server's Bokeh "
            "proxy (bokeh_nb_client's server extension) at <Jupyter base "
            "URL>bokeh-proxy/<port>/<app>, computed in the browser, for Bokeh servers "
            "on the Jupyter host. 'auto': the proxy when this kernel was started by a "
            "Jupyter server with the extension and the Bokeh server is on this host, "
            "with the direct URL as the browser's fallback; 'direct' otherwise."
        ),
    ).tag(config=True)

    browser = Unicode(
        None,
        allow_none=True,
        help=(
            "Browser used when a session is shown in a browser: a name known to "
            "Python's webbrowser module, 'none' to open nothing, or None for the default."
        ),
    ).tag(config=True)

    secret_key_env = Unicode(
        "BOKEH_SECRET_KEY",
        help=(
            "Name of the environment variable holding the server's secret key. When "
            "it is set, sessions opened by the magics use signed session ids made "
            "with that key (as `bokeh serve --session-ids signed` requires). The key "
            "itself is never stored in the configuration."
        ),
    ).tag(config=True)

    view_load_timeout = Float(
        15.0,
        help=(
            "Seconds an inline view waits for BokehJS and the server session to load "
            "before it shows an explanation in place of the plot."
        ),
    ).tag(config=True)

    @validate("timeout", "view_load_timeout")
    def _positive(self, proposal: dict[str, object]) -> float:
        value = proposal["value"]
        if not isinstance(value, float) or value <= 0:
            raise TraitError(f"must be a positive number of seconds, got {value!r}")
        return value

    def secret_key(self) -> str | None:
        """The secret key from the environment variable named by ``secret_key_env``."""
        name = str(self.secret_key_env)
        return os.environ.get(name) or None if name else None

    def session_options(self) -> dict[str, Any]:
        """Keyword options for ``pull_session``/``push_session`` from these settings."""
        options: dict[str, Any] = {"timeout": float(self.timeout)}
        key = self.secret_key()
        if key is not None:
            options["secret_key"] = key
        return options
