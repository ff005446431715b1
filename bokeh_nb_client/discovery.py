"""Discovery: find the apps a Bokeh server serves, over plain HTTP.

Below the Jupyter layer (stdlib and :mod:`.exceptions` only): the status panel's
server browser uses it, and so can any other front end.

What a ``bokeh serve`` process tells a client without opening a session:

* ``GET <app>/metadata`` answers JSON ``{"url": "/<app>", "data": {...}}`` for
  every app (``data`` is what the app declared, often ``{}``). It never runs the
  app, so it is the probe used here to confirm that a URL is an app.
* ``GET <server>/`` answers an HTML index with one ``<a href="<prefix>/<app>">``
  per app when the server has several, and redirects (302) to the app when it
  has exactly one. The redirect is *not* followed: a ``GET`` of an app's page
  would create a session and run the app on the server.

:func:`list_apps` combines them. It accepts the URL of a server (with or without
``--prefix``) or of one app, and raises an error from the package's tree, with a
message meant for a user, when the URL cannot be reached (``ConnectError``,
``Timeout``), or answered but is not a Bokeh server, or wants credentials
(:class:`DiscoveryError` and its subclasses: the server answered correctly in HTTP
terms, so this is not a protocol error of ours or of the server's). It is
blocking (``urllib``, with a timeout for the whole listing); the panel runs it in
a worker thread (``asyncio.to_thread``), so the kernel's loop is never blocked.
Only ``transport/websocket.py`` may use aiohttp, and one short listing does not
justify tornado's client.

Invariants:

* Nothing is sent but ``GET`` requests without credentials: a ``user:password@``
  part of the URL is dropped (it never appears in results or messages), and no
  token, cookie or secret key is involved. A server that requires authentication
  answers 401/403 or redirects to a login page, which is reported as such.
* Translation of ``urllib``/``socket`` errors into the error tree happens only in
  :func:`http_get`; the rest of the module sees :class:`HttpResponse` values.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from .exceptions import (
    AuthenticationRequired,
    ConnectError,
    DiscoveryError,
    NotABokehServer,
    Timeout,
)

__all__ = [
    "DEFAULT_BROWSE_TIMEOUT",
    "MAX_APPS",
    "AppInfo",
    "AuthenticationRequired",
    "DiscoveryError",
    "Fetch",
    "HttpResponse",
    "NotABokehServer",
    "ServerListing",
    "app_links",
    "http_get",
    "list_apps",
    "normalize_server_url",
]

#: Seconds allowed for a whole listing (every request it makes).
DEFAULT_BROWSE_TIMEOUT = 10.0
#: At most this many links of an index page are probed as apps.
MAX_APPS = 100
#: At most this many bytes of a response are read.
_MAX_BODY = 2_000_000


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What :func:`list_apps` needs of one HTTP response."""

    url: str
    status: int
    content_type: str = ""
    location: str | None = None
    body: bytes = b""


#: ``fetch(url, timeout) -> HttpResponse``: one GET, redirects not followed. It
#: returns every HTTP status as a response and raises ``ConnectError`` or
#: ``Timeout`` when no response arrives. :func:`http_get` is the real one; tests
#: pass their own.
Fetch = Callable[[str, float], HttpResponse]


@dataclass(frozen=True, slots=True)
class AppInfo:
    """One app of a server.

    Attributes:
        name: the app's path below the server URL, e.g. ``"basic"``.
        url: the app's http(s) URL, what ``pull_session(url=...)`` takes.
        metadata: the ``data`` of the app's ``/metadata`` answer.
    """

    name: str
    url: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerListing:
    """The apps found at a URL.

    Attributes:
        url: the URL that was browsed (normalised, without credentials).
        apps: the apps, in the server's order.
        note: how they were found, for the panel ("index page", "redirect to its
            only app", "the URL is an app").
    """

    url: str
    apps: tuple[AppInfo, ...]
    note: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx responses back to the caller instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def http_get(url: str, timeout: float) -> HttpResponse:
    """GET ``url`` without following redirects; every HTTP status is a response.

    Raises:
        Timeout: no complete answer within ``timeout`` seconds.
        ConnectError: refused, DNS failure, TLS failure, or a broken connection.
    """
    request = urllib.request.Request(url, headers={"Accept": "text/html, application/json"})
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return HttpResponse(
                url=url,
                status=int(answer.status),
                content_type=answer.headers.get("Content-Type", ""),
                location=answer.headers.get("Location"),
                body=answer.read(_MAX_BODY),
            )
    except urllib.error.HTTPError as exc:
        # 3xx (not followed), 4xx and 5xx: still an answer from a server.
        with exc:
            return HttpResponse(
                url=url,
                status=exc.code,
                content_type=exc.headers.get("Content-Type", "") if exc.headers else "",
                location=exc.headers.get("Location") if exc.headers else None,
                body=exc.read(_MAX_BODY) if exc.fp is not None else b"",
            )
    except TimeoutError:
        raise Timeout(f"GET {url}", timeout) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise Timeout(f"GET {url}", timeout) from None
        raise ConnectError(f"cannot reach {_origin(url)}: {_describe(reason)}", url=url) from exc
    except (OSError, ValueError) as exc:  # a reset connection, a bad status line
        raise ConnectError(f"cannot reach {_origin(url)}: {_describe(exc)}", url=url) from exc


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _describe(reason: object) -> str:
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason})"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def normalize_server_url(url: str) -> str:
    """The http(s) URL to browse: scheme added, credentials, query and ``/`` dropped.

    ``localhost:5006`` -> ``http://localhost:5006``; ``ws://h/app/ws`` ->
    ``http://h/app``.

    Raises:
        ValueError: empty, another scheme, no host, or a bad port.
    """
    text = url.strip()
    if not text:
        raise ValueError("enter the URL of a Bokeh server, e.g. http://localhost:5006")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path
    if parts.scheme in ("ws", "wss") and path.rstrip("/").endswith("/ws"):
        path = path.rstrip("/")[: -len("/ws")]
    if scheme not in ("http", "https"):
        raise ValueError(f"{parts.scheme}:// URLs cannot be browsed; give an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the URL has an invalid port") from None
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, path.rstrip("/"), "", ""))


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def app_links(index_html: str, base_url: str) -> list[str]:
    """The candidate app URLs linked from a server's index page, in page order.

    A candidate is a link to this server (same scheme, host and port) below
    ``base_url``'s path, without query or fragment; the index page's links to
    bokeh.org and the like are not. Duplicates are dropped; at most
    :data:`MAX_APPS` are returned.
    """
    parser = _LinkParser()
    parser.feed(index_html)
    parser.close()
    base = urlsplit(base_url)
    prefix = base.path.rstrip("/")
    found: list[str] = []
    for href in parser.hrefs:
        target = urlsplit(urljoin(base_url + "/", href))
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            continue
        if target.query or target.fragment:
            continue
        path = target.path.rstrip("/")
        if not path.startswith(prefix + "/") or path == prefix:
            continue
        if path.startswith(prefix + "/static/"):
            continue
        url = urlunsplit((target.scheme, target.netloc, path, "", ""))
        if url not in found:
            found.append(url)
        if len(found) >= MAX_APPS:
            break
    return found


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self, what: str) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise Timeout(what, self.seconds)
        return left


def _metadata(app_url: str, base_url: str, fetch: Fetch, deadline: _Deadline) -> AppInfo | None:
    """The app at ``app_url``, if its ``/metadata`` answers like a Bokeh app's."""
    probe = app_url + "/metadata"
    answer = fetch(probe, deadline.remaining(f"GET {probe}"))
    if answer.status != 200:
        return None
    try:
        content = json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(content, dict) or not isinstance(content.get("url"), str):
        return None
    data = content.get("data")
    below = app_url[len(base_url) :] if app_url.startswith(base_url + "/") else ""
    name = below.strip("/") or urlsplit(app_url).path.rstrip("/").rpartition("/")[2] or "/"
    return AppInfo(name=name, url=app_url, metadata=data if isinstance(data, dict) else {})


def list_apps(
    url: str, *, timeout: float = DEFAULT_BROWSE_TIMEOUT, fetch: Fetch = http_get
) -> ServerListing:
    """List the apps of the Bokeh server (or the one app) at ``url``. Blocking.

    Steps: if ``<url>/metadata`` answers like an app, ``url`` is that app.
    Otherwise ``<url>/`` must be the server's index page (its app links are then
    confirmed one by one through their ``/metadata``) or a redirect to the
    server's only app.

    Args:
        url: a server URL (``http://host:5006``, ``.../prefix``), an app URL, or
            ``host:port``.
        timeout: seconds for the whole listing.
        fetch: how to GET a URL (see :data:`Fetch`).

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host.
        ConnectError: the server cannot be reached (refused, unknown host, TLS).
        Timeout: the listing did not finish within ``timeout``.
        NotABokehServer: something answered, but not like a Bokeh server (the
            message says what it answered).
        AuthenticationRequired: the server wants credentials (401/403, or a
            redirect to a login page).
    """
    base = normalize_server_url(url)
    deadline = _Deadline(timeout)
    itself = _metadata(base, base, fetch, deadline)
    if itself is not None:
        return ServerListing(base, (itself,), "the URL is an app")
    index = fetch(base + "/", deadline.remaining(f"GET {base}/"))
    if index.status in (301, 302, 303, 307, 308) and index.location:
        target = urlsplit(urljoin(base + "/", index.location))
        origin = urlsplit(base)
        if (target.scheme, target.netloc) == (origin.scheme, origin.netloc):
            app = urlunsplit((target.scheme, target.netloc, target.path.rstrip("/"), "", ""))
            found = _metadata(app, base, fetch, deadline)
            if found is not None:
                return ServerListing(base, (found,), "the server redirects to its only app")
        raise AuthenticationRequired(
            f"{base}/ redirects to {_shown(index.location)}, which is not a Bokeh app "
            "(a login page? browsing sends no credentials)",
            status=index.status,
        )
    if index.status in (401, 403):
        raise AuthenticationRequired(
            f"{base}/ answered HTTP {index.status}: the server requires authentication, "
            "which browsing does not send; open sessions in code with headers=/cookies=",
            status=index.status,
        )
    if index.status != 200:
        raise NotABokehServer(
            f"{base} is not a Bokeh server: {base}/ answered HTTP {index.status} and "
            f"{base}/metadata is not an app's"
        )
    if "html" not in index.content_type.lower():
        raise NotABokehServer(
            f"{base} is not a Bokeh server: {base}/ answered {index.content_type or 'a body'} "
            "instead of an index page"
        )
    page = index.body.decode("utf-8", errors="replace")
    apps = [
        info
        for link in app_links(page, base)
        if (info := _metadata(link, base, fetch, deadline)) is not None
    ]
    if not apps:
        raise NotABokehServer(
            f"{base} is not a Bokeh server: its page links to no app that answers <app>/metadata"
        )
    return ServerListing(base, tuple(apps), "index page")


def _shown(location: str) -> str:
    parts = urlsplit(location)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) or "/"
