"""The markup of a live inline view, its route, and where ``show()`` displays.

A live view is the server's own autoload script (``bokeh.embed.server_session``)
inside a box with a banner and the view's browser code
(``static/view.js``, shipped as package data, read once and inlined): BokehJS
and its CSS come from the Bokeh server, then the view pulls its own client
session of the *same* server session that the kernel is connected to, with a
token the kernel minted (so it honours the session's ``token_expiration``).
Changes made in the kernel reach the server and from there the view, without
re-running anything. The browser therefore talks to the Bokeh server directly,
which has two consequences users must know (they are also spelled out in the
view's failure message):

* the server must be reachable from the browser at the session's URL, and
* the server must accept the notebook page's origin on its websocket:
  ``bokeh serve ... --allow-websocket-origin=<host:port of the Jupyter page>``
  (or ``BOKEH_ALLOW_WS_ORIGIN``); by default it only accepts its own host.

When the browser cannot reach the Bokeh server (JupyterHub, Binder, a remote
machine), the view goes through the Jupyter server instead, if it runs
bokeh_nb_client's server extension (:mod:`bokeh_nb_client.server_extension`):
``BokehClient.view_url`` is "auto" by default, which uses that proxy when the
kernel was started by such a server and the Bokeh server is on its host, with a
URL the browser computes from the page's own Jupyter base URL
(``<base>bokeh-proxy/<port>/<app>``), falling back to the direct URL when the
page is not a Jupyter page or the proxy refuses; "proxy" and "direct" force
either. Through the proxy, neither of the two conditions above applies.

What the browser code does (see the header of ``static/view.js``): it reports a
view that did not load within ``BokehClient.view_load_timeout`` seconds, shows a
banner when the view's websocket is lost and clears it when it is back, turns
off BokehJS's own connection toasts (bokeh >= 3.8) for the documents it pulls,
and closes a view's connection when the kernel renders the view again (same
display id) or when the view left the page.

Which views exist and how they follow their sessions (re-rendered with a fresh
token on reconnect, marked closed on close) is :mod:`.views`; this module only
renders. Status and session tables are :mod:`.rendering` (re-exported here for
existing imports).

Known limitation of bokeh 3.9: ``server_session(model=...)`` ignores ``model``
(its template never uses the model id), so a view always shows every root of the
session's document.
"""

from __future__ import annotations

import functools
import html
import json
import sys
import uuid
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit

from .. import _bokeh
from .rendering import Rendered, SessionLike, SessionRow, render_sessions, render_status, short_id

__all__ = [
    "Rendered",
    "SessionLike",
    "SessionRow",
    "ViewRoute",
    "closed_view",
    "in_kernel",
    "inline_view",
    "new_display_id",
    "notice_view",
    "render_sessions",
    "render_status",
    "short_id",
    "show_in_notebook",
    "view_route",
    "wants_inline",
]

#: Where an inline view loads the session from: the Bokeh server's own URL
#: ("direct"), the Jupyter server's Bokeh proxy ("proxy"), or the proxy when the
#: browser finds it usable and the direct URL otherwise ("auto").
ViewRoute = Literal["direct", "proxy", "auto"]

#: What a view's box says: "live" (it follows its session), "closed" (the
#: kernel closed the session) or "detached" (the kernel's session stopped
#: following the server; the view comes back when it reconnects).
ViewState = Literal["live", "closed", "detached"]

_BANNER_STYLE = (
    "font-family:sans-serif;font-size:90%;padding:0.2em 0.5em;margin:0.2em 0;"
    "border-left:3px solid {colour}"
)


@functools.cache
def view_script() -> str:
    """The view's browser code (``static/view.js``), read once from the package."""
    return resources.files(__package__).joinpath("static", "view.js").read_text("utf-8")


def _js(value: object) -> str:
    """``value`` as a JavaScript literal that is safe inside an HTML ``<script>``."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def new_display_id() -> str:
    """A fresh IPython display id for a view that may be updated later."""
    return f"bokeh-nb-client-{uuid.uuid4().hex}"


def _box(box_id: str, state: str, banner: str, colour: str, inner: str, attrs: str = "") -> str:
    style = _BANNER_STYLE.format(colour=colour)
    return (
        f'<div class="bnc-view" id="{box_id}" data-state="{state}"{attrs}>'
        f'<div class="bnc-banner bnc-{state}" role="status" style="{style}">'
        f"{html.escape(banner)}</div>{inner}</div>"
    )


def _token_for(session_id: str) -> str:
    """A token for a view shown without a session object (the environment's signing)."""
    key, signed = _bokeh.resolve_signing(None, None)
    return _bokeh.session_id_and_token(session_id, secret_key=key, signed=signed, expiration=300)


def inline_view(
    app_url: str,
    session_id: str,
    *,
    model: _bokeh.Model | None = None,
    load_timeout: float = 15.0,
    route: ViewRoute = "direct",
    token: str | None = None,
    key: str | None = None,
) -> Rendered:
    """A live view of server session ``session_id`` of the app at ``app_url``.

    Args:
        app_url: the app's http(s) URL: as the *browser* reaches it for the
            ``"direct"`` route; as the kernel reaches it (a loopback URL) for the
            others, which need its port and path only.
        session_id: the server session to show.
        model: the model to show (bokeh 3.9 shows the whole document regardless).
        load_timeout: seconds before the view reports that it did not load.
        route: ``"direct"`` embeds the Bokeh server's own autoload tag;
            ``"proxy"`` loads the session through the Jupyter server's Bokeh proxy,
            at a URL the browser computes from the page's Jupyter base URL;
            ``"auto"`` does that when the page's Jupyter server has the proxy and
            allows the port, and loads from ``app_url`` otherwise.
        token: the token the view connects with (default: a new one, signed as
            the environment says, valid 300 s); the kernel's views pass the
            session's own (:mod:`.views`).
        key: the view's key in the page (its display id): a later rendering
            with the same key replaces this one and closes its connection.

    Returns:
        HTML (a container, the view's script and the loader: the server's
        autoload tag, or the proxy-aware loading done by the script) and a
        plain-text line for front ends without HTML.
    """
    box_id = f"bnc-view-{uuid.uuid4().hex}"
    label = short_id(session_id)
    config: dict[str, Any] = {
        "key": key or box_id,
        "boxId": box_id,
        "state": "live",
        "notice": "",
        "sessionLabel": label,
        "sessionId": session_id,
        "token": token if token is not None else _token_for(session_id),
        "appUrl": app_url,
        "loadTimeoutMs": round(load_timeout * 1000),
        "proxy": None,
    }
    attrs = f' data-view-key="{html.escape(config["key"])}"'
    if route == "direct":
        loader = _bokeh.server_session_script(model, session_id, app_url)
    else:
        from ..server_extension.contract import PROXY_PATH, STATUS_PATH

        attrs += f' data-route="{route}"'  # the script updates it once it knows
        element_id = f"bnc-autoload-{uuid.uuid4().hex}"
        parts = urlsplit(app_url)
        config["proxy"] = {
            "elementId": element_id,
            "port": parts.port or 80,
            "appPath": parts.path.rstrip("/"),
            "proxyPath": PROXY_PATH + "/",
            "statusPath": STATUS_PATH,
            "fallback": route == "auto",
        }
        loader = f'<div id="{element_id}"></div>'
    # Shown until the script replaces it; also what a static rendering of the
    # notebook (untrusted, or on a web page without a kernel) keeps showing.
    waiting = (
        f"Loading the live view of Bokeh session {label} from {app_url} … "
        "(it needs the Bokeh server to be running and the notebook to be trusted)"
    )
    script = f"<script>{view_script()}\nwindow.bokehNbClient.render({_js(config)});</script>"
    markup = _box(box_id, "loading", waiting, "#c62828", script + loader, attrs)
    return Rendered(f"Live view of Bokeh session {label} at {app_url}", markup)


def notice_view(key: str | None, state: ViewState, text: str) -> Rendered:
    """A view replaced by a notice: ``state`` is "closed" or "detached".

    Its script closes the connection of the view rendered before under ``key``.
    """
    box_id = f"bnc-view-{uuid.uuid4().hex}"
    config = {"key": key or box_id, "boxId": box_id, "state": state, "notice": text}
    script = f"<script>{view_script()}\nwindow.bokehNbClient.render({_js(config)});</script>"
    return Rendered(text, _box(box_id, state, text, "#757575", script))


def closed_view(
    app_url: str, session_id: str, key: str | None = None, *, why: str | None = None
) -> Rendered:
    """What replaces an inline view once the kernel closed its session.

    The browser's own connection to the server session is closed too: it would
    no longer show anything the kernel does. ``why`` replaces "was closed in the
    kernel" (e.g. "the kernel shut down").
    """
    how = f"was closed ({why})" if why else "was closed in the kernel"
    text = (
        f"Bokeh session {short_id(session_id)} at {app_url} {how}; "
        "open a new session to see a live view again."
    )
    return notice_view(key, "closed", text)


def detached_view(app_url: str, session_id: str, why: str, key: str | None = None) -> Rendered:
    """What replaces a view while the kernel's session does not follow the server."""
    text = (
        f"The kernel's Bokeh session {short_id(session_id)} at {app_url} is not connected "
        f"({why}); this view is disconnected and comes back when the session reconnects "
        "(the Reconnect button of %bokeh_sessions, or session.reconnect())."
    )
    return notice_view(key, "detached", text)


# -- where to show: inline or browser ----------------------------------------------


def in_kernel() -> bool:
    """True when running inside a Jupyter kernel (a front end can display HTML).

    Cheap outside IPython: when IPython was never imported, this returns False
    without importing it.
    """
    if "IPython" not in sys.modules:
        return False
    from ._ipython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def wants_inline() -> bool:
    """Whether ``show()`` should display inline, per ``BokehClient.show`` and the kernel."""
    from . import current_config

    config = current_config()
    mode = str(config.show) if config is not None else "auto"
    if mode == "browser":
        return False
    if mode == "inline":
        return "IPython" in sys.modules
    return in_kernel()


def view_load_timeout() -> float:
    """``BokehClient.view_load_timeout`` of the loaded extension (15 s without one)."""
    from . import current_config

    config = current_config()
    return float(config.view_load_timeout) if config is not None else 15.0


def view_route(app_url: str) -> ViewRoute:
    """The route of a new view of ``app_url``, per ``BokehClient.view_url`` and the kernel.

    "auto" (the default) goes through the Jupyter proxy when this kernel was started
    by a Jupyter server with bokeh_nb_client's server extension (its environment
    says so) and the Bokeh server is on this host (a loopback http URL); the
    browser still falls back to the direct URL if the proxy turns out unusable.
    Before a proxied view is shown, its port is registered with the proxy.

    Raises:
        ValueError: ``view_url`` is "proxy" but the proxy cannot reach ``app_url``.
    """
    import os

    from ..server_extension.contract import ENV_PROXY, is_loopback_host
    from . import current_config

    config = current_config()
    setting = str(config.view_url) if config is not None else "auto"
    if setting == "direct":
        return "direct"
    parts = urlsplit(app_url)
    on_this_host = parts.scheme == "http" and is_loopback_host(parts.hostname)
    if setting == "auto" and not (on_this_host and os.environ.get(ENV_PROXY)):
        return "direct"
    if not on_this_host:
        raise ValueError(
            f"BokehClient.view_url is 'proxy', but the Jupyter server's Bokeh proxy only "
            f"reaches http servers on its own host (localhost, 127.0.0.1, ::1), and "
            f"{app_url} is not one; set %config BokehClient.view_url = 'auto' or 'direct'"
        )
    _register_proxy_port(parts.port or 80)
    return "proxy" if setting == "proxy" else "auto"


def _register_proxy_port(port: int) -> None:
    """Let the Jupyter proxy reach ``port`` (when this kernel's server has a registry).

    A failure is logged, not raised: the view then reports the proxy's refusal
    ("proxy"), or the browser falls back to the direct URL ("auto").
    """
    import logging

    from ..server_extension.contract import PortRegistry

    registry = PortRegistry.from_environment()
    if registry is None:
        return
    try:
        registry.register(port)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "could not register port %d with the Jupyter server's Bokeh proxy (%s); "
            "it will be reachable only if c.BokehProxy.allowed_ports lists it",
            port,
            exc,
        )


#: The old private name, still used by tests of the route policy.
_view_route = view_route


def show_in_notebook(app_url: str, session_id: str) -> bool:
    """Display a session inline if this process runs in a notebook kernel.

    Called by ``bokeh_nb_client.client.show_session`` (through
    :mod:`bokeh_nb_client.inline`). The view follows the open session of this
    process with that id and app, if there is one (:mod:`.views`).

    Returns:
        True when the view was displayed; False when the caller should open a
        browser instead (not in a kernel, or ``BokehClient.show == "browser"``).

    Raises:
        ValueError: ``view_url`` is "proxy" but the proxy cannot reach ``app_url``.
    """
    if not wants_inline():
        return False
    from .views import live_views

    live_views().show(app_url, session_id)
    return True
