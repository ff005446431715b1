"""Rendering for the notebook: session status, session lists, and live inline views.

Everything that decides *what a user sees* in a cell's output lives here, so it can
be swapped without touching the magics:

* :func:`render_status` is the one place that renders a session's status (the
  magics display whatever it returns; an ipywidgets panel can replace it later);
* :func:`render_sessions` renders the table of ``%bokeh_sessions``;
* :func:`inline_view` renders a live view of a server session in the cell's
  output; :func:`show_in_notebook` is what ``show_session()`` (and so
  ``ClientSession.show()``) calls to display one inline when running in a kernel.

The inline view is the server's own autoload script
(``bokeh.embed.server_session``): BokehJS and its CSS come from the Bokeh server,
then BokehJS opens its own websocket to the *same* server session that the kernel
is connected to. Changes made in the kernel reach the server and from there the
view, without re-running anything. The browser therefore talks to the Bokeh server
directly, which has two consequences users must know (they are also spelled out
in the view's failure message):

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

A small script next to the autoload tag watches the view: it reports a view that
did not load within ``BokehClient.view_load_timeout`` seconds, shows a banner when
the view's websocket to the server is lost (BokehJS's ``connection_lost`` document
event) and clears it when BokehJS reconnects. It also lets a server session be
shown more than once in one page (a second ``%bokeh_show``, or re-running a cell):
BokehJS keeps one client session per server session in a page and refuses to
render its document a second time, so the script resets the document's view
manager before each new rendering.

Known limitation of bokeh 3.9: ``server_session(model=...)`` ignores ``model``
(its template never uses the model id), so a view always shows every root of the
session's document.

The only state kept here is the display ids of the views shown in this kernel
(so that closing a session can mark its views); nothing here talks to the server.
"""

from __future__ import annotations

import html
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from .. import _bokeh
from ..status import SessionState, SessionStatus

__all__ = [
    "Rendered",
    "SessionLike",
    "SessionRow",
    "closed_view",
    "display_inline",
    "in_kernel",
    "inline_view",
    "mark_views_closed",
    "new_display_id",
    "render_sessions",
    "render_status",
    "short_id",
    "show_in_notebook",
    "wants_inline",
]

#: Characters of a session id shown to users: enough to tell sessions apart.
SHORT_ID_CHARS = 8


class SessionLike(Protocol):
    """What rendering needs of a session: ``ClientSession`` and ``AsyncClientSession`` fit."""

    @property
    def id(self) -> str: ...

    @property
    def app_url(self) -> str: ...

    @property
    def status(self) -> SessionStatus: ...

    @property
    def document(self) -> _bokeh.Document | None: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    """Something to display: plain text for terminals and logs, HTML for notebooks.

    IPython's ``display()`` uses :meth:`_repr_mimebundle_`; ``str()`` gives the text.
    """

    text: str
    html: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def _repr_mimebundle_(
        self, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        return {"text/plain": self.text, "text/html": self.html}, self.metadata

    def __str__(self) -> str:
        return self.text


def short_id(session_id: str) -> str:
    """The first characters of a session id, with an ellipsis: ``"kgFCsj0p…"``."""
    return session_id[:SHORT_ID_CHARS] + "…" if len(session_id) > SHORT_ID_CHARS else session_id


def _server_and_app(app_url: str) -> tuple[str, str]:
    parts = urlsplit(app_url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def _root_labels(session: SessionLike) -> list[str]:
    doc = session.document
    if doc is None:
        return []
    return [
        f"{root.name} ({type(root).__name__})" if root.name else type(root).__name__
        for root in doc.roots
    ]


_STATE_COLOURS: Mapping[SessionState, str] = {
    SessionState.CONNECTED: "#2e7d32",
    SessionState.CONNECTING: "#f9a825",
    SessionState.RECONNECTING: "#f9a825",
    SessionState.NOT_CONNECTED: "#757575",
    SessionState.CLOSED: "#757575",
    SessionState.DISCONNECTED: "#c62828",
    SessionState.ERROR: "#c62828",
}


def render_status(session: SessionLike, name: str | None = None) -> Rendered:
    """Render one session's status: server, app, short id, roots, state.

    Args:
        session: the session to describe (read on the calling thread, which must be
            the document's home thread: the kernel's, in a notebook).
        name: the variable the session is bound to, if any.

    Returns:
        A :class:`Rendered` with a concise text and an HTML table.
    """
    status = session.status
    server, app = _server_and_app(session.app_url)
    roots = _root_labels(session)
    version = f" (bokeh {status.server_version})" if status.server_version else ""
    title = f"Bokeh session {name!r}" if name else "Bokeh session"
    rows: list[tuple[str, str]] = [
        ("server", server + version),
        ("app", app),
        ("session", short_id(session.id)),
        ("roots", f"{len(roots)}: {', '.join(roots)}" if roots else "0"),
        ("state", status.state.value),
    ]
    if status.last_error:
        rows.append(("last error", status.last_error))
    width = max(len(key) for key, _ in rows)
    text = "\n".join([title, *(f"  {key:<{width}}  {value}" for key, value in rows)])

    colour = _STATE_COLOURS.get(status.state, "#757575")
    cells = "".join(
        f'<tr><th style="text-align:left;padding:0 1em 0 0">{html.escape(key)}</th>'
        f'<td style="text-align:left">{_html_value(key, value, colour)}</td></tr>'
        for key, value in rows
    )
    markup = (
        f'<div class="bnc-status" data-state="{html.escape(status.state.name.lower())}">'
        f"<strong>{html.escape(title)}</strong>"
        f'<table style="margin:0.2em 0 0 0">{cells}</table></div>'
    )
    return Rendered(text, markup)


def _html_value(key: str, value: str, colour: str) -> str:
    escaped = html.escape(value)
    if key == "state":
        return f'<span style="color:{colour};font-weight:bold">{escaped}</span>'
    if key == "session":
        return f"<code>{escaped}</code>"
    return escaped


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One line of ``%bokeh_sessions``: a session and the names it is bound to."""

    session: SessionLike
    names: tuple[str, ...]
    #: "sync" (a ClientSession), "async" (an AsyncClientSession bound to a name), or
    #: "-" (not bound to any name in this kernel, so its kind is not known here)
    kind: Literal["sync", "async", "-"]


def render_sessions(rows: Sequence[SessionRow]) -> Rendered:
    """Render the sessions of this kernel as a table (``%bokeh_sessions``)."""
    if not rows:
        message = "No open Bokeh sessions in this kernel."
        return Rendered(message, f"<p>{html.escape(message)}</p>")
    header = ("name", "kind", "state", "app", "session", "roots")
    table: list[tuple[str, ...]] = []
    for row in rows:
        status = row.session.status
        table.append(
            (
                ", ".join(row.names) or "-",
                row.kind,
                status.state.value,
                row.session.app_url,
                short_id(row.session.id),
                str(len(_root_labels(row.session))),
            )
        )
    widths = [max(len(line[i]) for line in (header, *table)) for i in range(len(header))]
    text_lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *table)
    ]
    head = "".join(f'<th style="text-align:left">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in line)
        + "</tr>"
        for line in table
    )
    markup = (
        f'<table class="bnc-sessions"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    return Rendered("\n".join(text_lines), markup)


# -- the live inline view ----------------------------------------------------------

# The watcher script. Placeholders are filled with JSON values by inline_view().
# It must stay self-contained (no imports) and tolerate BokehJS not being there.
_WATCHER_JS = r"""
(function () {
  "use strict";
  const box = document.getElementById(__BOX_ID__);
  if (box == null) { return; }
  const banner = box.querySelector(".bnc-banner");
  const sessionLabel = __SESSION_LABEL__;
  const appUrl = __APP_URL__;
  const loadTimeout = __LOAD_TIMEOUT_MS__;

  function say(state, text, action) {
    box.dataset.state = state;
    banner.className = "bnc-banner bnc-" + state;
    banner.textContent = text;
    banner.hidden = text === "";
    if (action != null) {
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = action.label;
      link.addEventListener("click", function (event) { event.preventDefault(); action.run(); });
      banner.append(" ", link);
    }
  }

  // BokehJS keeps one client session per server session in a page, and renders a
  // session's document only once (add_document_standalone asserts the document
  // has no view manager yet). Forget the previous view manager before every
  // rendering, so that a second view, or a re-run cell, renders too.
  function allowRepeatedViews(Bokeh) {
    if (Bokeh == null || typeof Bokeh.require !== "function") { return; }
    let standalone = null;
    try { standalone = Bokeh.require("embed/standalone"); } catch (error) { return; }
    if (standalone == null || standalone.__bokeh_nb_client_patched) { return; }
    const original = standalone.add_document_standalone;
    standalone.add_document_standalone = function (doc, ...rest) {
      if (doc != null && doc.views_manager != null) { doc.views_manager = null; }
      return original.call(this, doc, ...rest);
    };
    standalone.__bokeh_nb_client_patched = true;
  }
  if (window.Bokeh != null) {
    allowRepeatedViews(window.Bokeh);
  } else {
    // BokehJS is not loaded yet: run before the autoload's own callbacks.
    if (window._bokeh_onload_callbacks === undefined) { window._bokeh_onload_callbacks = []; }
    window._bokeh_onload_callbacks.push(function () { allowRepeatedViews(window.Bokeh); });
  }

  function watch(doc) {
    doc.on_event("connection_lost", function (_, event) {
      if (!box.isConnected) { return; }
      if (event.timeout == null) {
        say("disconnected",
            "Disconnected from the Bokeh server at " + appUrl + ": this view of session " +
            sessionLabel + " no longer updates.",
            {label: "Reconnect", run: function () { event.reconnect(); }});
      } else {
        say("disconnected",
            "Disconnected from the Bokeh server at " + appUrl + "; reconnecting in " +
            Math.max(0, Math.round(event.timeout / 1000)) + " s.");
      }
    });
    doc.on_event("client_reconnected", function () {
      if (box.isConnected) { say("live", ""); }
    });
  }

  const deadline = Date.now() + loadTimeout;
  function poll() {
    if (!box.isConnected) { return; }
    const Bokeh = window.Bokeh;
    if (Bokeh != null && Bokeh.index != null) {
      const index = Bokeh.index;
      const views = Array.isArray(index.roots) ? index.roots : Object.values(index);
      const docs = new Set();
      for (const view of views) {
        const doc = view != null && view.model != null ? view.model.document : null;
        if (doc != null && view.el != null && box.contains(view.el)) { docs.add(doc); }
      }
      if (docs.size > 0) {
        docs.forEach(watch);
        say("live", "");
        return;
      }
    }
    if (Date.now() > deadline && box.dataset.state !== "failed") {
      if (box.dataset.route === "proxy") {
        // Loaded through the Jupyter server's Bokeh proxy (see _LOADER_JS).
        say("failed",
            "The live view of session " + sessionLabel + " did not load through the " +
            "Jupyter server's Bokeh proxy (" + box.dataset.viewUrl + "). Check that the " +
            "Bokeh server at " + appUrl + " is running on the Jupyter server's host.");
      } else {
        say("failed",
            "The live view of session " + sessionLabel + " did not load. Check that " + appUrl +
            " is reachable from this browser and that the Bokeh server accepts this page's " +
            "websocket origin: bokeh serve ... --allow-websocket-origin=" + window.location.host);
      }
    }
    setTimeout(poll, Date.now() > deadline ? 1000 : 100);
  }
  poll();
})();
"""


#: Where an inline view loads the session from: the Bokeh server's own URL
#: ("direct"), the Jupyter server's Bokeh proxy ("proxy"), or the proxy when the
#: browser finds it usable and the direct URL otherwise ("auto").
ViewRoute = Literal["direct", "proxy", "auto"]

# The loader of a view that may go through the Jupyter server's Bokeh proxy
# (bokeh_nb_client.server_extension). It stands where the server's autoload tag
# would (BokehJS renders next to the element named by bokeh-autoload-element) and
# does what that tag does, an XHR for autoload.js with the session id in a header,
# but computes the URL in the browser: <Jupyter base URL>bokeh-proxy/<port><app>,
# from the page's own base URL, so the view works behind any host name, prefix or
# hub. Placeholders are filled with JSON values by inline_view().
_LOADER_JS = r"""
(function () {
  "use strict";
  const box = document.getElementById(__BOX_ID__);
  const anchor = document.getElementById(__ELEMENT_ID__);
  if (box == null || anchor == null) { return; }
  const banner = box.querySelector(".bnc-banner");
  const sessionLabel = __SESSION_LABEL__;
  const sessionId = __SESSION_ID__;
  const directUrl = __DIRECT_URL__;    // the app's URL as the kernel reaches it
  const port = __PORT__;               // the Bokeh server's port on the Jupyter host
  const appPath = __APP_PATH__;        // the app's path on that server ("" for "/")
  const proxyPath = __PROXY_PATH__;    // "bokeh-proxy/"
  const statusPath = __STATUS_PATH__;  // "api/status"
  const fallback = __FALLBACK__;       // "auto": the direct URL when the proxy is unusable

  function fail(text) {
    box.dataset.state = "failed";
    banner.className = "bnc-banner bnc-failed";
    banner.textContent = text;
    banner.hidden = false;
  }

  // The Jupyter server's base URL as this page knows it: JupyterLab and Notebook 7
  // publish it in #jupyter-config-data, the classic notebook on <body data-base-url>.
  // null: not a Jupyter page (an exported notebook, VS Code...).
  function jupyterBaseUrl() {
    const data = document.getElementById("jupyter-config-data");
    let base = null;
    if (data != null) {
      try {
        const config = JSON.parse(data.textContent);
        if (typeof config.baseUrl === "string") { base = config.baseUrl; }
      } catch (error) {
        base = null;  // not JSON: not Jupyter's page config
      }
    }
    const body = document.body;
    if (base == null && body != null && typeof body.dataset.baseUrl === "string") {
      base = body.dataset.baseUrl;
    }
    if (base == null) { return null; }
    return new URL(base.endsWith("/") ? base : base + "/", window.location.href).href;
  }

  function load(appUrl, route) {
    box.dataset.route = route;
    box.dataset.viewUrl = appUrl;
    const pathname = new URL(appUrl).pathname.replace(/\/+$/, "");
    // bokeh-app-path becomes the websocket's path, bokeh-absolute-url its host and
    // (behind the proxy, see server_extension.handlers) the resources' root.
    const query = [
      ["bokeh-autoload-element", anchor.id],
      ["bokeh-app-path", pathname === "" ? "/" : pathname],
      ["bokeh-absolute-url", appUrl],
    ].map(function (pair) { return pair[0] + "=" + encodeURIComponent(pair[1]); }).join("&");
    const where = route === "proxy" ? " through the Jupyter server's Bokeh proxy" : "";
    const xhr = new XMLHttpRequest();
    xhr.responseType = "blob";
    xhr.open("GET", appUrl.replace(/\/+$/, "") + "/autoload.js?" + query, true);
    xhr.setRequestHeader("Bokeh-Session-Id", sessionId);
    xhr.onload = function () {
      if (xhr.status !== 200) {
        fail("The live view of session " + sessionLabel + " could not be loaded from " + appUrl +
             where + " (HTTP " + xhr.status + (xhr.status === 403 && route === "proxy" ?
             ": the proxy does not allow port " + port + ", see c.BokehProxy.allowed_ports" :
             "") + ").");
        return;
      }
      const script = document.createElement("script");
      script.src = URL.createObjectURL(xhr.response);
      document.body.appendChild(script);
    };
    xhr.onerror = function () {
      fail("The live view of session " + sessionLabel + " could not reach " + appUrl + where + ".");
    };
    xhr.send();
  }

  const base = jupyterBaseUrl();
  if (base == null) {
    if (fallback) {
      load(directUrl, "direct");
    } else {
      fail("This page is not served by a Jupyter server, so there is no Bokeh proxy to load " +
           "session " + sessionLabel + " through: %config BokehClient.view_url = \"direct\" " +
           "shows it from " + directUrl + ".");
    }
    return;
  }
  const proxiedUrl = new URL(proxyPath + port + appPath, base).href;
  if (!fallback) {
    load(proxiedUrl, "proxy");
    return;
  }
  // "auto": use the proxy when this page's Jupyter server has it and allows the port.
  fetch(new URL(proxyPath + statusPath + "?port=" + port, base).href,
        {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (status) { return status != null && status.port_allowed === true; })
    .catch(function () { return false; })
    .then(function (useProxy) {
      if (useProxy) { load(proxiedUrl, "proxy"); } else { load(directUrl, "direct"); }
    });
})();
"""


def _js(value: object) -> str:
    """``value`` as a JavaScript literal that is safe inside an HTML ``<script>``."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _proxy_loader(
    box_id: str, element_id: str, app_url: str, session_id: str, fallback: bool
) -> str:
    """The ``<script>`` that loads a view through the Jupyter proxy (see ``_LOADER_JS``)."""
    from ..server_extension.contract import PROXY_PATH, STATUS_PATH

    parts = urlsplit(app_url)
    values = {
        "__BOX_ID__": box_id,
        "__ELEMENT_ID__": element_id,
        "__SESSION_LABEL__": short_id(session_id),
        "__SESSION_ID__": session_id,
        "__DIRECT_URL__": app_url,
        "__PORT__": parts.port or 80,
        "__APP_PATH__": parts.path.rstrip("/"),
        "__PROXY_PATH__": PROXY_PATH + "/",
        "__STATUS_PATH__": STATUS_PATH,
        "__FALLBACK__": fallback,
    }
    script = _LOADER_JS
    for placeholder, value in values.items():
        script = script.replace(placeholder, _js(value))
    return f'<script id="{html.escape(element_id)}">{script}</script>'


def inline_view(
    app_url: str,
    session_id: str,
    *,
    model: _bokeh.Model | None = None,
    load_timeout: float = 15.0,
    route: ViewRoute = "direct",
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

    Returns:
        HTML (a container, the watcher script and the loader: the server's autoload
        tag, or the proxy-aware script) and a plain-text line for front ends
        without HTML.
    """
    box_id = f"bnc-view-{uuid.uuid4().hex}"
    label = short_id(session_id)
    watcher = (
        _WATCHER_JS.replace("__BOX_ID__", _js(box_id))
        .replace("__SESSION_LABEL__", _js(label))
        .replace("__APP_URL__", _js(app_url))
        .replace("__LOAD_TIMEOUT_MS__", _js(round(load_timeout * 1000)))
    )
    route_attribute = ""  # the watcher reads data-route, which the loader updates
    if route == "direct":
        loader = _bokeh.server_session_script(model, session_id, app_url)
    else:
        route_attribute = f' data-route="{route}"'
        element_id = f"bnc-autoload-{uuid.uuid4().hex}"
        loader = _proxy_loader(box_id, element_id, app_url, session_id, route == "auto")
    # Shown until the watcher hides it; also what a static rendering of the notebook
    # (untrusted, or on a web page without a kernel) keeps showing.
    waiting = (
        f"Loading the live view of Bokeh session {label} from {app_url} … "
        "(it needs the Bokeh server to be running and the notebook to be trusted)"
    )
    markup = (
        f'<div class="bnc-view" id="{box_id}" data-state="loading"{route_attribute}>'
        f'<div class="bnc-banner bnc-loading" role="status" '
        f'style="font-family:sans-serif;font-size:90%;padding:0.2em 0.5em;'
        f'border-left:3px solid #c62828;margin:0.2em 0">{html.escape(waiting)}</div>'
        f"<script>{watcher}</script>"
        f"{loader}"
        f"</div>"
    )
    text = f"Live view of Bokeh session {label} at {app_url}"
    return Rendered(text, markup)


def closed_view(app_url: str, session_id: str) -> Rendered:
    """What replaces an inline view once the kernel closed its session.

    The browser's own connection to the server session would keep working, but it
    would no longer show anything the kernel does; a static note says so instead.
    """
    label = short_id(session_id)
    text = (
        f"Bokeh session {label} at {app_url} was closed in the kernel; "
        "open a new session to see a live view again."
    )
    markup = (
        f'<div class="bnc-view" data-state="closed"><div class="bnc-banner bnc-closed" '
        f'role="status" style="font-family:sans-serif;font-size:90%;padding:0.2em 0.5em;'
        f'border-left:3px solid #757575;margin:0.2em 0">{html.escape(text)}</div></div>'
    )
    return Rendered(text, markup)


def new_display_id() -> str:
    """A fresh IPython display id for a view that may be updated later."""
    return f"bokeh-nb-client-{uuid.uuid4().hex}"


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


def _load_timeout() -> float:
    from . import current_config

    config = current_config()
    return float(config.view_load_timeout) if config is not None else 15.0


#: Display ids of the inline views shown in this kernel, per server session id, so
#: that closing a session through the magics can mark its views closed.
_views: dict[str, list[str]] = {}


def _view_route(app_url: str) -> ViewRoute:
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


def display_inline(app_url: str, session_id: str, model: _bokeh.Model | None = None) -> None:
    """Display a live view of a server session in the current cell's output.

    The view is displayed under a fresh display id, remembered for
    :func:`mark_views_closed`. Its route (direct, or through the Jupyter server's
    Bokeh proxy) follows ``BokehClient.view_url`` (see :func:`_view_route`).

    Raises:
        ValueError: ``view_url`` is "proxy" but the proxy cannot reach ``app_url``.
    """
    from ._ipython import display

    route = _view_route(app_url)
    view = inline_view(app_url, session_id, model=model, load_timeout=_load_timeout(), route=route)
    display_id = new_display_id()
    display(view, display_id=display_id)
    _views.setdefault(session_id, []).append(display_id)


def mark_views_closed(app_url: str, session_id: str) -> None:
    """Replace every inline view of ``session_id`` shown in this kernel by :func:`closed_view`.

    Front ends route the update by display id, so views in earlier cells change too.
    """
    from ._ipython import update_display

    for display_id in _views.pop(session_id, []):
        update_display(closed_view(app_url, session_id), display_id=display_id)


def show_in_notebook(app_url: str, session_id: str) -> bool:
    """Display a session inline if this process runs in a notebook kernel.

    Called by ``bokeh_nb_client.client.show_session``.

    Under a Jupyter server with bokeh_nb_client's server extension the view goes
    through that server's Bokeh proxy (``BokehClient.view_url``, see
    :func:`display_inline`), so the browser need not reach the Bokeh server.

    Returns:
        True when the view was displayed; False when the caller should open a
        browser instead (not in a kernel, or ``BokehClient.show == "browser"``).

    Raises:
        ValueError: ``view_url`` is "proxy" but the proxy cannot reach ``app_url``.
    """
    if not wants_inline():
        return False
    display_inline(app_url, session_id)
    return True
