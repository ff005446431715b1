"""URL conventions of a Bokeh server: app URLs, websocket URLs, query arguments.

Pure string functions with the semantics of ``bokeh.client.util`` and of
``bokeh.resources.SessionCoordinates`` (PROTOCOL.md §1.1, §1.2):

* an application's http URL is ``<scheme>://<host>[:port][<prefix>]<app_path>``,
  without a trailing slash (the bare server root may keep its ``/``);
* its websocket endpoint is that URL plus ``/ws``, with ``http`` -> ``ws`` and
  ``https`` -> ``wss``;
* query arguments are appended as ``?k=v&...`` with ``quote_plus``.

Schemes are matched case-sensitively, as bokeh does.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote_plus, urlsplit, urlunsplit

__all__ = [
    "app_url",
    "http_url_for_session",
    "server_url_for_websocket_url",
    "websocket_url_for_server_url",
    "with_query_arguments",
]


def websocket_url_for_server_url(url: str) -> str:
    """Turn the http(s) URL of an app into its ws(s) endpoint URL.

    Example: ``http://localhost:5006/app`` -> ``ws://localhost:5006/app/ws``, and
    ``https://h/`` -> ``wss://h/ws``.

    Raises:
        ValueError: ``url`` does not start with ``http:`` or ``https:``.
    """
    if url.startswith("http:"):
        converted = "ws:" + url[len("http:") :]
    elif url.startswith("https:"):
        converted = "wss:" + url[len("https:") :]
    else:
        raise ValueError(f"URL has unknown protocol {url}; expected http: or https:")
    return converted + ("ws" if converted.endswith("/") else "/ws")


def server_url_for_websocket_url(url: str) -> str:
    """Turn a ws(s) endpoint URL back into the http(s) URL of its app.

    The result keeps a trailing slash: ``ws://foo.com/ws`` -> ``http://foo.com/``.

    Raises:
        ValueError: ``url`` does not start with ``ws:`` or ``wss:``, or does not end
            in ``/ws``.
    """
    if url.startswith("ws:"):
        converted = "http:" + url[len("ws:") :]
    elif url.startswith("wss:"):
        converted = "https:" + url[len("wss:") :]
    else:
        raise ValueError(f"URL has non-websocket protocol {url}; expected ws: or wss:")
    if not converted.endswith("/ws"):
        raise ValueError(f"websocket URL {url} does not end in /ws")
    return converted[: -len("ws")]


def app_url(server_url: str, app_path: str | None) -> str:
    """Join a server's http(s) URL and an application path.

    ``app_url("http://h:5006", "/myapp")``, ``app_url("http://h:5006/", "myapp")``
    and ``app_url("http://h:5006/myapp/", None)`` all give
    ``"http://h:5006/myapp"``. A server root without an app path is returned as
    given (``"http://h:5006/"`` stays).

    Args:
        server_url: ``http://`` or ``https://`` URL with a host, optionally with a
            ``--prefix`` path; no query and no fragment.
        app_path: the app's path with or without slashes, or None (or ``""``) for
            the app served at the root.

    Raises:
        ValueError: ``server_url`` is a websocket URL, has another scheme, has no
            host, an invalid port, a query or a fragment, or ``app_path`` contains
            ``?`` or ``#``. The message names the URL.
    """
    if server_url.startswith(("ws:", "wss:")):
        raise ValueError(
            f"{server_url} is a websocket URL; give the http or https URL of the server"
        )
    if not server_url.startswith(("http://", "https://")):
        raise ValueError(f"{server_url} is not an http:// or https:// URL")
    if "?" in server_url or "#" in server_url:
        raise ValueError(f"{server_url} has a query or fragment; give the bare server URL")
    parts = urlsplit(server_url)
    try:
        parts.port  # noqa: B018 -- parsing the port is what validates it
    except ValueError as exc:
        raise ValueError(f"{server_url} has an invalid port") from exc
    if not parts.hostname:
        raise ValueError(f"{server_url} has no host")

    path = (app_path or "").strip("/")
    if "?" in path or "#" in path:
        raise ValueError(f"app path {app_path!r} must not contain '?' or '#'")
    if path:
        return server_url.rstrip("/") + "/" + path
    if parts.path in ("", "/"):
        return server_url
    return server_url.rstrip("/")


def with_query_arguments(url: str, arguments: Mapping[str, str] | None) -> str:
    """Append query arguments, ``quote_plus``-encoding keys and values.

    As ``bokeh.util.strings.format_url_query_arguments``, except that an empty
    mapping leaves the URL unchanged (bokeh appends a bare ``?``) and that a URL
    which already has a query gets the arguments joined with ``&``.

    Args:
        url: any URL, usually the ws URL of an app.
        arguments: the arguments in order, or None for none.
    """
    if not arguments:
        return url
    query = "&".join(f"{quote_plus(key)}={quote_plus(value)}" for key, value in arguments.items())
    return url + ("&" if "?" in url else "?") + query


def http_url_for_session(server_http_url: str, session_id: str) -> str:
    """The page URL that shows one session in a browser, as ``show_session`` opens.

    Example: ``http://h:5006/app?bokeh-session-id=abc``.

    Args:
        server_http_url: the app's http(s) URL.
        session_id: the session id; it is ``quote_plus``-encoded.
    """
    return with_query_arguments(server_http_url, {"bokeh-session-id": session_id})


def redact_userinfo(url: str, replacement: str = "***@") -> str:
    """``url`` with any ``user:password@`` replaced by ``replacement``, for display.

    Credentials in a URL are used to connect but never shown: not in reprs,
    status snapshots, logs or error messages.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{replacement}{host}"))
