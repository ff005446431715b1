"""A Jupyter server extension that proxies Bokeh servers on the Jupyter host.

On JupyterHub, Binder, a remote machine over SSH or a remote Jupyter server in
VS Code, the browser reaches the Jupyter server and nothing else: not the Bokeh
server's port, which an inline view (:mod:`bokeh_nb_client.jupyter.display`)
otherwise loads BokehJS and its websocket from. This extension relays both
through Jupyter, under Jupyter's own authentication::

    <base_url>bokeh-proxy/<port>/<app>/autoload.js   ->  http://127.0.0.1:<port>/<app>/autoload.js
    <base_url>bokeh-proxy/<port>/static/...          ->  http://127.0.0.1:<port>/static/...
    <base_url>bokeh-proxy/<port>/<app>/ws            ->  ws://127.0.0.1:<port>/<app>/ws
    <base_url>bokeh-proxy/api/status?port=<port>     ->  JSON: the proxy is here; port allowed?

It is enabled by installing the package: the wheel puts
``etc/jupyter/jupyter_server_config.d/bokeh_nb_client.json`` in the environment,
and ``jupyter server extension list`` shows ``bokeh_nb_client.server_extension``.
Disable it with ``jupyter server extension disable bokeh_nb_client.server_extension``.

What is reachable (never an open proxy): only this machine's loopback interface
(the URL has no host part; ``127.0.0.1`` is tried, then ``::1``), and only
allowed ports: ``c.BokehProxy.allowed_ports`` (default ``[5006]``, bokeh serve's
default) plus, unless ``c.BokehProxy.allow_registered_ports = False``, the ports
that kernels of this Jupyter server registered when they showed a session of a
Bokeh server on that port (:class:`~.contract.PortRegistry`). Anything else is
refused with 403, as is any request without a Jupyter user. Jupyter's cookies and
tokens are not passed on; see :mod:`.handlers` for the full list of invariants.

How the kernel knows (detection): the extension sets ``BOKEH_NB_CLIENT_PROXY``
and ``BOKEH_NB_CLIENT_PROXY_PORTS`` in the Jupyter server's environment, so every
kernel the server starts inherits them. A kernel that sees them (and
``BokehClient.view_url = "auto"``, the default) emits a view whose URLs the
*browser* computes from the page's own Jupyter base URL (JupyterLab's and
Notebook 7's ``jupyter-config-data``, or classic's ``data-base-url``), after
asking the status endpoint whether the port is allowed; on a page that is not a
Jupyter page, or when the proxy says no, the view falls back to the Bokeh
server's direct URL. So the view works behind any hostname, prefix or hub.

Limits: the proxy serves the inline view (autoload script, resources,
websocket), not the app's own HTML page, whose resource URLs Bokeh writes
root-relative; Bokeh servers speaking TLS are not proxied (on loopback there is
nothing to protect); kernels not started by this Jupyter server (VS Code's local
kernels, kernel gateways) do not inherit the environment and show direct views;
an editable install (``pip install -e``) does not install the config file,
because setuptools puts no data files in editable wheels: enable the extension
there with ``jupyter server extension enable --sys-prefix
bokeh_nb_client.server_extension``.

Why not jupyter-server-proxy (evaluated: version 4.6.0, on jupyter_server 2.21,
tornado 6.6, bokeh 3.9.2). It is the ecosystem's standard and gets several things
right: authentication (403 on unauthenticated websockets), and it offers every
subprotocol the browser sent to the upstream and selects the first one,
``bokeh``, so Bokeh's ``["bokeh", token]`` handshake survives. It falls short
here in four ways, each checked against a real server:

1. The view does not load. Bokeh's autoload handler writes only the *origin* of
   ``bokeh-absolute-url`` into the script as the resources root, so behind
   ``/proxy/<port>/`` BokehJS is fetched from ``<jupyter>/static/js/bokeh.min.js``,
   Jupyter's own static directory. jupyter-server-proxy relays bytes and does not
   fix that; this extension rewrites the one origin it controls (a sentinel, see
   :func:`.handlers.autoload_rewrite`).
2. It forwards every request header, including Jupyter's login cookie and an
   ``Authorization: token`` header. Bokeh copies request headers and cookies into
   the session token, which it writes unsigned into the autoload script and hands
   to the app (``session_context``): Jupyter credentials leak to whatever listens
   on the port.
3. ``/proxy/<port>/`` reaches every port on localhost (even the Jupyter server's
   own); its only knob is a host allow-list. Nothing limits it to Bokeh servers.
4. It forwards the browser's ``Origin`` and ``Host``; Bokeh accepts the websocket
   only thanks to a tornado 6.6 shortcut (Origin equal to Host), which older
   tornado does not have (PROTOCOL.md §1.7). It also answers the browser's
   handshake before the upstream one (its issue #459), so an upstream refusal
   arrives as a closed socket instead of an HTTP status.

Subclassing its handlers could fix 1, 2 and 4, but depending on it would also
install and enable its ``/proxy/<port>/`` route (3) for every user of this
package. The missing piece is small, so it is written here on jupyter_server's
own handler classes and tornado, with no new dependency.

Layering: this package runs in the Jupyter server process and is a front end of
its own. It imports tornado, jupyter_server and traitlets (for ``BokehProxy``),
never IPython, and nothing of bokeh_nb_client but its version; the kernel side imports only
:mod:`.contract`, which is stdlib-only. Importing this package imports nothing
but :mod:`.contract`: the handlers are loaded by the server when it loads the
extension.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from .contract import ENV_PORTS_DIR, ENV_PROXY, PROXY_PATH, PortRegistry

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

# jupyter_server finds the two underscore functions; `jupyter server extension
# list` shows __version__.
__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Tell jupyter_server where the extension's loader is (this module)."""
    return [{"module": "bokeh_nb_client.server_extension"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    """Register the proxy's handlers and tell future kernels about it.

    Called once by jupyter_server when it loads the extension.
    """
    from .config import BokehProxy
    from .handlers import Upstreams, handlers

    config = BokehProxy(parent=serverapp)
    registry: PortRegistry | None = None
    if config.allow_registered_ports:
        registry = PortRegistry.create(Path(serverapp.runtime_dir))
        atexit.register(registry.remove)
        os.environ[ENV_PORTS_DIR] = str(registry.directory)
    else:
        os.environ.pop(ENV_PORTS_DIR, None)
    # Kernels inherit the server's environment when they start: that is how they
    # learn that this server proxies Bokeh servers (see the module docstring).
    os.environ[ENV_PROXY] = PROXY_PATH
    base_url = str(serverapp.web_app.settings["base_url"])
    routes = handlers(base_url, Upstreams(config, registry))
    serverapp.web_app.add_handlers(".*$", routes)  # type: ignore[no-untyped-call]
    serverapp.log.info(
        "bokeh_nb_client: proxying Bokeh servers on 127.0.0.1 at %s%s/<port>/ (ports %s%s)",
        base_url,
        PROXY_PATH,
        sorted(config.allowed_ports),
        " and those kernels register" if registry is not None else "",
    )
