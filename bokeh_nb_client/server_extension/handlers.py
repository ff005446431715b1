"""The proxy's tornado handlers: HTTP, websocket and status.

Routes, under the Jupyter server's ``base_url``:

* ``bokeh-proxy/api/status[?port=N]``: JSON about the proxy (and whether port N
  is allowed); the inline views probe it before using the proxy.
* ``bokeh-proxy/<port>/<path>/ws``: a websocket relayed to
  ``ws://127.0.0.1:<port>/<path>/ws``.
* ``bokeh-proxy/<port>/<path>``: GET and HEAD relayed to
  ``http://127.0.0.1:<port>/<path>``.

Invariants (what keeps this from being an open proxy, or a leak):

* Every request is authenticated by Jupyter (its identity provider, so a hub's
  too) and authorized on the ``bokeh-proxy`` resource (``read`` for HTTP,
  ``write`` for websockets); a request without a user gets 403, never a login
  redirect: nothing here is a page.
* The upstream host is always loopback (``127.0.0.1``, then ``::1``); the URL has
  no host part at all. The port must be allowed (:class:`Upstreams`), else 403.
* Only an allow-list of request headers goes upstream: never ``Cookie``,
  ``Authorization``, ``Origin`` or ``Referer``. Jupyter's credentials would
  otherwise reach the Bokeh app, which copies request headers and cookies into
  the session token it writes, unsigned, into the autoload script. No
  ``Set-Cookie`` comes back: the Bokeh app must not set cookies on Jupyter's
  origin.
* The browser's websocket is checked against Jupyter's origin rules before the
  upstream connection is made; upstream, the proxy is a non-browser client and
  sends no ``Origin`` (PROTOCOL.md §1.7), so Bokeh servers need no
  ``--allow-websocket-origin`` for the Jupyter page.
* Subprotocols: the browser's list (``["bokeh", token]``, PROTOCOL.md §1.3) is
  offered to the Bokeh server unchanged, *before* the browser's handshake is
  answered, and the browser gets the one the server selected. An upstream
  refusal (403, 404) therefore reaches the browser as that HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import ensure_async, url_path_join
from tornado import httpclient, web
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)

from .. import __version__
from .config import BokehProxy
from .contract import PROXY_PATH, STATUS_PATH, PortRegistry, is_loopback_host, valid_port

__all__ = [
    "AUTH_RESOURCE",
    "SENTINEL_ORIGIN",
    "BokehHTTPProxyHandler",
    "BokehProxyStatusHandler",
    "BokehWebSocketProxyHandler",
    "Upstreams",
    "autoload_rewrite",
    "handlers",
]

log = logging.getLogger(__name__)

#: The resource name the Jupyter authorizer is asked about.
AUTH_RESOURCE = "bokeh-proxy"

#: Loopback addresses tried in order; the second only when the first refuses.
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")

#: Request headers passed to the Bokeh server; everything else is dropped.
FORWARDED_REQUEST_HEADERS = (
    "Accept",
    "Accept-Language",
    "Bokeh-Session-Id",  # the autoload request's session id (bokeh.embed.server_session)
    "Cache-Control",
    "If-Modified-Since",
    "If-None-Match",
    "User-Agent",
)

#: Response headers passed back to the browser; everything else is dropped.
FORWARDED_RESPONSE_HEADERS = (
    "Cache-Control",
    "Content-Disposition",
    "Content-Type",
    "ETag",
    "Expires",
    "Last-Modified",
)

#: What the proxy sends upstream as ``bokeh-absolute-url``'s origin, and replaces in
#: the autoload script by the browser's own proxy URL (``.invalid`` never resolves).
SENTINEL_ORIGIN = "http://bokeh-nb-client-proxy.invalid"

# A browser-facing URL that may be written into JavaScript string literals: no
# quotes, backslashes, angle brackets, whitespace or ampersands.
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/@%\[\]+!$,;=()*]+\Z")


@dataclass(frozen=True, slots=True)
class Upstreams:
    """Which Bokeh servers the proxy may reach: loopback, allowed ports only."""

    config: BokehProxy
    registry: PortRegistry | None

    def allows(self, port: int) -> bool:
        """Whether ``port`` is configured, or registered by a kernel (when allowed)."""
        if not valid_port(port):
            return False
        if port in self.config.allowed_ports:
            return True
        return bool(self.config.allow_registered_ports) and (
            self.registry is not None and port in self.registry
        )

    def port(self, text: str) -> int:
        """The allowed port named by a URL segment of digits.

        Raises:
            tornado.web.HTTPError: 403 when the port is not allowed.
        """
        port = int(text)
        if not self.allows(port):
            raise web.HTTPError(
                403,
                "port %s is not allowed: add it to c.BokehProxy.allowed_ports, or show a "
                "session of that server from a kernel of this Jupyter server",
                text,
            )
        return port


def autoload_rewrite(
    arguments: Iterable[tuple[str, str]], app_path: str, proxy_path: str
) -> tuple[list[tuple[str, str]], str | None]:
    """Make an autoload.js request's ``bokeh-absolute-url`` survive the proxy.

    The Bokeh server writes the *origin* of ``bokeh-absolute-url`` (plus its own
    ``--prefix``) into the script as the root of BokehJS's resources, and drops the
    path, which behind the proxy is the part that matters. So the proxy sends a
    sentinel origin instead, and afterwards replaces it in the script by the
    browser's proxy root: resources, and the websocket host, then go through the
    proxy as well.

    Args:
        arguments: the request's query arguments, in order.
        app_path: the path upstream, before ``/autoload.js`` (``/app``, or ``""``).
        proxy_path: this port's proxy path as the browser sees it
            (``<base_url>bokeh-proxy/<port>``).

    Returns:
        The arguments to send upstream, and the browser's proxy root to put in place
        of :data:`SENTINEL_ORIGIN` (None when the request has no absolute URL, and
        nothing needs rewriting).

    Raises:
        tornado.web.HTTPError: 400 when the absolute URL is not this proxy's URL of
            the app, or contains characters that cannot go into a script verbatim.
    """
    pairs = list(arguments)
    absolute = next((value for key, value in pairs if key == "bokeh-absolute-url"), None)
    if absolute is None:
        return pairs, None
    root = absolute.rstrip("/")
    if app_path:
        if not root.endswith(app_path):
            raise web.HTTPError(400, "bokeh-absolute-url does not end with the app's path")
        root = root[: len(root) - len(app_path)]
    if not _SAFE_URL.match(root) or urlsplit(root).path.rstrip("/") != proxy_path.rstrip("/"):
        raise web.HTTPError(400, "bokeh-absolute-url is not this proxy's URL of the app")
    rewritten = [
        (key, SENTINEL_ORIGIN + app_path if key == "bokeh-absolute-url" else value)
        for key, value in pairs
    ]
    return rewritten, root


async def _authorize(handler: JupyterHandler, action: Literal["read", "write"]) -> None:
    user = handler.current_user
    allowed = await ensure_async(
        handler.authorizer.is_authorized(handler, user, action, AUTH_RESOURCE)
    )
    if not allowed:
        raise web.HTTPError(403, "not authorized to use the Bokeh proxy")


def _proxy_prefix(handler: JupyterHandler, port: str) -> str:
    return str(url_path_join(handler.base_url, PROXY_PATH, port))


def _upstream_path(handler: JupyterHandler, port: str) -> str:
    """The request's path after ``bokeh-proxy/<port>``, still percent-encoded."""
    prefix = _proxy_prefix(handler, port)
    path = handler.request.path
    if not path.startswith(prefix):
        raise web.HTTPError(404)
    return path[len(prefix) :] or "/"


class BokehHTTPProxyHandler(JupyterHandler):
    """GET and HEAD to an allowed Bokeh server port on loopback."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def get_login_url(self) -> str:
        # Called by @web.authenticated to redirect; scripts and resources are not
        # pages, so refuse instead (as jupyter_server's APIHandler does).
        raise web.HTTPError(403)

    @web.authenticated
    async def get(self, port: str, _path: str | None = None) -> None:
        """Relay a GET (autoload script, BokehJS resources, metadata)."""
        await self._relay(port, "GET")

    @web.authenticated
    async def head(self, port: str, _path: str | None = None) -> None:
        """Relay a HEAD."""
        await self._relay(port, "HEAD")

    async def _relay(self, port_text: str, method: Literal["GET", "HEAD"]) -> None:
        await _authorize(self, "read")
        _refuse_cross_site(self)
        port = self._upstreams.port(port_text)
        path = _upstream_path(self, port_text)
        arguments = parse_qsl(self.request.query, keep_blank_values=True)
        browser_root = None
        if path.endswith("/autoload.js"):
            arguments, browser_root = autoload_rewrite(
                arguments, path[: -len("/autoload.js")], _proxy_prefix(self, port_text)
            )
        target = path + ("?" + urlencode(arguments) if arguments else "")
        headers = {
            name: value
            for name in FORWARDED_REQUEST_HEADERS
            if (value := self.request.headers.get(name)) is not None
        }
        response = await self._fetch(port, target, method, headers)

        self.set_status(response.code, response.reason)
        for name in FORWARDED_RESPONSE_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                self.set_header(name, value)
        location = response.headers.get("Location")
        if location is not None:
            self.set_header(
                "Location", _rewrite_location(location, port, _proxy_prefix(self, port_text))
            )
        body = response.body or b""
        if browser_root is not None and response.code == 200:
            body = body.replace(SENTINEL_ORIGIN.encode(), browser_root.encode())
            self.set_header("Cache-Control", "no-store")  # it carries a session token
        if method == "GET" and response.code not in (204, 304):
            self.write(body)
        self.finish()

    async def _fetch(
        self, port: int, target: str, method: str, headers: dict[str, str]
    ) -> httpclient.HTTPResponse:
        config = self._upstreams.config
        client = httpclient.AsyncHTTPClient()
        for host in LOOPBACK_HOSTS:
            request = httpclient.HTTPRequest(
                f"http://{host}:{port}{target}",
                method=method,
                headers=headers,
                follow_redirects=False,
                decompress_response=True,
                connect_timeout=float(config.connect_timeout),
                request_timeout=float(config.request_timeout),
            )
            try:
                return await client.fetch(request, raise_error=False)
            except httpclient.HTTPClientError as exc:  # 599: timeout, or the stream broke
                raise web.HTTPError(504, "Bokeh server on port %d: %s", port, exc) from exc
            except OSError as exc:  # refused, or no IPv6 loopback: try the next host
                log.debug("no answer from %s:%d: %s", host, port, exc)
        raise web.HTTPError(502, "no Bokeh server answers on port %d of the Jupyter host", port)


def _refuse_cross_site(handler: JupyterHandler) -> None:
    # A page on another site may include <script src=".../autoload.js"> and so
    # create sessions with the user's cookies; browsers label such requests.
    site = handler.request.headers.get("Sec-Fetch-Site")
    if site == "cross-site" and handler.allow_origin != "*":
        raise web.HTTPError(403, "cross-site requests to the Bokeh proxy are refused")


def _rewrite_location(location: str, port: int, proxy_prefix: str) -> str:
    """Point a Bokeh server redirect (``/app`` from ``/``) back through the proxy."""
    parts = urlsplit(location)
    if parts.netloc and not (is_loopback_host(parts.hostname) and parts.port == port):
        return location
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    return proxy_prefix + path + ("?" + parts.query if parts.query else "")


class BokehWebSocketProxyHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A browser websocket relayed to a Bokeh server's ``/ws`` on loopback.

    The upstream connection is made in :meth:`get`, before the browser's handshake
    is answered; :meth:`open` starts the task that relays upstream messages to the
    browser (owned by this handler, cancelled in :meth:`on_close`), and
    :meth:`on_message` relays browser messages upstream, one at a time (tornado
    waits for it before reading the next, which gives back-pressure).
    """

    auth_resource = AUTH_RESOURCE

    def initialize(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams
        self._upstream: WebSocketClientConnection | None = None
        self._relay: asyncio.Task[None] | None = None

    def set_default_headers(self) -> None:
        """No page headers (CSP and such) on a websocket handshake."""

    def get_compression_options(self) -> dict[str, Any] | None:
        """No permessage-deflate: Bokeh servers do not compress either."""
        return None

    @property
    def max_message_size(self) -> int:
        """Largest browser message accepted (``BokehProxy.max_message_size``)."""
        return int(self._upstreams.config.max_message_size)

    @ws_authenticated
    async def get(self, port_text: str, _path: str) -> None:
        """Connect upstream with the browser's subprotocols, then accept the browser."""
        await _authorize(self, "write")
        origin = self.get_origin()
        if origin is not None and not self.check_origin(origin):
            raise web.HTTPError(403, "cross-origin websocket refused")
        port = self._upstreams.port(port_text)
        header = self.request.headers.get("Sec-WebSocket-Protocol", "")
        offered = [item.strip() for item in header.split(",") if item.strip()]
        target = _upstream_path(self, port_text)
        if self.request.query:
            target += "?" + self.request.query
        self._upstream = await self._connect(port, target, offered)
        try:
            await super().get(port_text, _path)  # returns when the connection is over
        finally:
            self._close_upstream(None, None)

    async def _connect(
        self, port: int, target: str, subprotocols: list[str]
    ) -> WebSocketClientConnection:
        config = self._upstreams.config
        for host in LOOPBACK_HOSTS:
            request = httpclient.HTTPRequest(
                f"ws://{host}:{port}{target}",
                headers={"User-Agent": self.request.headers.get("User-Agent", "bokeh-proxy")},
                connect_timeout=float(config.connect_timeout),
                request_timeout=float(config.connect_timeout),
            )
            try:
                return await websocket_connect(
                    request,
                    subprotocols=subprotocols or None,
                    max_message_size=int(config.max_message_size),
                )
            except httpclient.HTTPClientError as exc:
                # The Bokeh server refused the upgrade (403 origin, 404 app...): say so.
                status = exc.code if 400 <= exc.code < 600 and exc.code != 599 else 502
                raise web.HTTPError(status, "Bokeh server on port %d: %s", port, exc) from exc
            except OSError as exc:
                log.debug("no websocket at %s:%d: %s", host, port, exc)
        raise web.HTTPError(502, "no Bokeh server answers on port %d of the Jupyter host", port)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """The subprotocol the Bokeh server selected (``bokeh``), if the browser offered it."""
        selected = self._upstream.selected_subprotocol if self._upstream is not None else None
        return selected if selected in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        """Start pinging the browser (Jupyter's keep-alive) and relaying upstream messages."""
        super().open(*args, **kwargs)
        if self._upstream is not None:
            self._relay = asyncio.create_task(self._relay_upstream(self._upstream))

    async def _relay_upstream(self, upstream: WebSocketClientConnection) -> None:
        while (message := await upstream.read_message()) is not None:
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                return
        # The Bokeh server closed: close the browser's side with its code and reason.
        self.close(upstream.close_code, upstream.close_reason)

    async def on_message(self, message: str | bytes) -> None:
        """Relay one browser message upstream (close the browser if upstream is gone)."""
        upstream = self._upstream
        if upstream is None:
            return
        try:
            await upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close(upstream.close_code, upstream.close_reason)

    def on_close(self) -> None:
        """The browser closed: stop relaying, close upstream with the browser's code."""
        if self._relay is not None:
            self._relay.cancel()
            self._relay = None
        self._close_upstream(self.close_code, self.close_reason)

    def _close_upstream(self, code: int | None, reason: str | None) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is None:
            return
        # 1005/1006/1015 describe a missing close frame; they may not be sent.
        sendable = code is not None and code not in (1005, 1006, 1015)
        with contextlib.suppress(WebSocketClosedError):
            upstream.close(code if sendable else None, reason if sendable else None)


class BokehProxyStatusHandler(APIHandler):
    """``bokeh-proxy/api/status[?port=N]``: is the proxy here, and may it reach port N."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    @web.authenticated
    async def get(self) -> None:
        """JSON: the extension, its version, the configured ports, and ``port_allowed``."""
        await _authorize(self, "read")
        config = self._upstreams.config
        reply: dict[str, Any] = {
            "extension": "bokeh_nb_client",
            "version": __version__,
            "proxy": url_path_join(self.base_url, PROXY_PATH) + "/",
            "allowed_ports": sorted(config.allowed_ports),
            "allow_registered_ports": bool(config.allow_registered_ports),
        }
        port = self.get_argument("port", None)
        if port is not None:
            if not port.isdigit():
                raise web.HTTPError(400, "port must be a number")
            reply["port"] = int(port)
            reply["port_allowed"] = self._upstreams.allows(int(port))
        self.finish(json.dumps(reply))


Route = tuple[str, type[web.RequestHandler], dict[str, Any]]


def handlers(base_url: str, upstreams: Upstreams) -> list[Route]:
    """The proxy's routes under ``base_url``, most specific first."""
    root = url_path_join(base_url, PROXY_PATH)
    options = {"upstreams": upstreams}
    return [
        (url_path_join(root, STATUS_PATH), BokehProxyStatusHandler, options),
        (url_path_join(root, r"(\d+)(/(?:.*/)?ws)"), BokehWebSocketProxyHandler, options),
        (url_path_join(root, r"(\d+)(/.*)?"), BokehHTTPProxyHandler, options),
    ]
