"""URL mapping (PROTOCOL.md §1.1, §1.2); the first cases mirror bokeh's
tests/unit/bokeh/client/test_util__client.py."""

from __future__ import annotations

import pytest

from bokeh_nb_client.protocol.urls import (
    app_url,
    http_url_for_session,
    server_url_for_websocket_url,
    websocket_url_for_server_url,
    with_query_arguments,
)

# -- server_url_for_websocket_url (as bokeh) -----------------------------------------


def test_server_url_with_ws() -> None:
    assert server_url_for_websocket_url("ws://foo.com/ws") == "http://foo.com/"


def test_server_url_with_wss() -> None:
    assert server_url_for_websocket_url("wss://foo.com/ws") == "https://foo.com/"


def test_server_url_keeps_path() -> None:
    assert server_url_for_websocket_url("ws://h:5006/pre/app/ws") == "http://h:5006/pre/app/"


def test_server_url_bad_proto() -> None:
    with pytest.raises(ValueError, match=r"non-websocket protocol junk://foo\.com/ws"):
        server_url_for_websocket_url("junk://foo.com/ws")


@pytest.mark.parametrize("url", ["ws://foo.com/junk", "wss://foo.com/junk", "ws://foo.com/ws/"])
def test_server_url_bad_ending(url: str) -> None:
    with pytest.raises(ValueError, match="does not end in /ws"):
        server_url_for_websocket_url(url)


# -- websocket_url_for_server_url (as bokeh) -----------------------------------------


@pytest.mark.parametrize("url", ["http://foo.com", "http://foo.com/"])
def test_websocket_url_with_http(url: str) -> None:
    assert websocket_url_for_server_url(url) == "ws://foo.com/ws"


@pytest.mark.parametrize("url", ["https://foo.com", "https://foo.com/"])
def test_websocket_url_with_https(url: str) -> None:
    assert websocket_url_for_server_url(url) == "wss://foo.com/ws"


def test_websocket_url_keeps_port_and_path() -> None:
    assert websocket_url_for_server_url("http://127.0.0.1:5077/app") == "ws://127.0.0.1:5077/app/ws"


@pytest.mark.parametrize("url", ["junk://foo.com", "ws://foo.com", "HTTP://foo.com", "foo.com"])
def test_websocket_url_bad_proto(url: str) -> None:
    with pytest.raises(ValueError, match="URL has unknown protocol"):
        websocket_url_for_server_url(url)


@pytest.mark.parametrize("url", ["http://h:1/app", "https://h/", "http://h/pre/app"])
def test_round_trip(url: str) -> None:
    back = server_url_for_websocket_url(websocket_url_for_server_url(url))
    assert back.rstrip("/") == url.rstrip("/")


# -- app_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "path", "expected"),
    [
        ("http://h:5006", "/myapp", "http://h:5006/myapp"),
        ("http://h:5006", "myapp", "http://h:5006/myapp"),
        ("http://h:5006/", "/myapp", "http://h:5006/myapp"),
        ("http://h:5006/", "myapp/", "http://h:5006/myapp"),
        ("http://h:5006//", "//myapp//", "http://h:5006/myapp"),
        ("https://h", "/a/b", "https://h/a/b"),
        ("http://h:5006/prefix", "/myapp", "http://h:5006/prefix/myapp"),
        ("http://h:5006/prefix/", "myapp", "http://h:5006/prefix/myapp"),
        ("http://h:5006/myapp/", None, "http://h:5006/myapp"),
        ("http://h:5006/myapp", "", "http://h:5006/myapp"),
        ("http://h:5006/myapp", "/", "http://h:5006/myapp"),
        ("http://h:1/", None, "http://h:1/"),
        ("http://h:1", None, "http://h:1"),
        ("http://h:1/", "/", "http://h:1/"),
        ("http://[::1]:5006", "app", "http://[::1]:5006/app"),
        ("http://user@h", "app", "http://user@h/app"),
    ],
)
def test_app_url(server: str, path: str | None, expected: str) -> None:
    assert app_url(server, path) == expected


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("ws://h:5006", "is a websocket URL"),
        ("wss://h:5006/app/ws", "is a websocket URL"),
        ("ftp://h", "is not an http:// or https:// URL"),
        ("h:5006", "is not an http:// or https:// URL"),
        ("default", "is not an http:// or https:// URL"),
        ("", "is not an http:// or https:// URL"),
        ("http:/h", "is not an http:// or https:// URL"),
        ("http://", "has no host"),
        ("http:///app", "has no host"),
        ("http://:5006/app", "has no host"),
        ("http://h:port/app", "has an invalid port"),
        ("http://h:99999", "has an invalid port"),
        ("http://h/app?x=1", "has a query or fragment"),
        ("http://h/app?", "has a query or fragment"),
        ("http://h/app#top", "has a query or fragment"),
    ],
)
def test_app_url_rejects(server: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        app_url(server, "x")
    assert server in str(info.value)


@pytest.mark.parametrize("path", ["app?x=1", "app#frag"])
def test_app_url_rejects_query_in_path(path: str) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        app_url("http://h", path)


# -- query arguments ----------------------------------------------------------------


def test_no_arguments() -> None:
    assert with_query_arguments("ws://h/app/ws", None) == "ws://h/app/ws"
    assert with_query_arguments("ws://h/app/ws", {}) == "ws://h/app/ws"


def test_arguments_in_order_with_quote_plus() -> None:
    url = with_query_arguments("ws://h/app/ws", {"foo": "bar", "n": "1", "a b": "c&d=e/f é"})
    assert url == "ws://h/app/ws?foo=bar&n=1&a+b=c%26d%3De%2Ff+%C3%A9"


def test_arguments_match_bokeh() -> None:
    strings = pytest.importorskip("bokeh.util.strings")
    arguments = {"x y": "1+2", "ü": "&?#"}
    expected = strings.format_url_query_arguments("ws://h/ws", arguments)
    assert with_query_arguments("ws://h/ws", arguments) == expected


def test_arguments_appended_to_an_existing_query() -> None:
    assert with_query_arguments("http://h/a?x=1", {"y": "2"}) == "http://h/a?x=1&y=2"


def test_http_url_for_session() -> None:
    assert (
        http_url_for_session("http://h:5006/app", "abc") == "http://h:5006/app?bokeh-session-id=abc"
    )
    assert (
        http_url_for_session("http://h/app", "a b/c+d")
        == "http://h/app?bokeh-session-id=a+b%2Fc%2Bd"
    )
