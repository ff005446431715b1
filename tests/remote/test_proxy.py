"""The Bokeh proxy of the Jupyter server extension, over HTTP and websockets.

Against a real ``jupyter server`` under ``/user/test/`` with a token and a real
``bokeh serve`` on another port (see ``conftest.py``): what it lets through, what
it refuses, and what it changes on the way (the autoload script's URLs) or
leaves out (Jupyter's credentials, the browser's Origin).
"""

from __future__ import annotations

import asyncio
import base64
import http.cookies
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import Any

import aiohttp
import pytest
from jupyter_process import Proxied

from bokeh_nb_client import pull_session
from bokeh_nb_client.exceptions import HandshakeRejected

pytestmark = pytest.mark.interop

SENTINEL = "bokeh-nb-client-proxy.invalid"


def http_get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def autoload_url(proxied: Proxied, absolute: str | None = None, element: str = "el") -> str:
    app = proxied.app_url()
    query = urllib.parse.urlencode(
        {
            "bokeh-autoload-element": element,
            "bokeh-app-path": urllib.parse.urlsplit(app).path,
            "bokeh-absolute-url": absolute or app,
        }
    )
    return f"{app}/autoload.js?{query}"


def token_payload(script: str) -> dict[str, Any]:
    """The session token's payload, with the compressed extra part (PROTOCOL.md §1.4)."""
    token = re.search(r'"token":"([^"]+)"', script)
    assert token is not None, script[:500]

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    payload: dict[str, Any] = json.loads(b64(token.group(1).split(".")[0]))
    extra = payload.pop("__bk__zlib_", None)
    if extra is not None:
        payload.update(json.loads(zlib.decompress(b64(extra))))
    return payload


async def ws_handshake(
    url: str, headers: dict[str, str], protocols: tuple[str, ...]
) -> tuple[int, str | None, str | None]:
    """(HTTP status, selected subprotocol, first message type) of a websocket attempt."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers, protocols=protocols) as ws:
                message = await asyncio.wait_for(ws.receive(), 10)
                kind = json.loads(message.data)["msgtype"] if message.type.name == "TEXT" else None
                return 101, ws.protocol, kind
        except aiohttp.WSServerHandshakeError as error:
            return error.status, None, None


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http") + "/ws"


# -- the status endpoint ---------------------------------------------------------


def test_status_says_which_ports_are_allowed(proxied: Proxied) -> None:
    status = proxied.jupyter.get_json(f"bokeh-proxy/api/status?port={proxied.bokeh.port}")
    assert status["extension"] == "bokeh_nb_client"
    assert status["port_allowed"] is True
    assert status["proxy"] == "/user/test/bokeh-proxy/"
    refused = proxied.jupyter.get_json(f"bokeh-proxy/api/status?port={proxied.refused_port}")
    assert refused["port_allowed"] is False


# -- refusals ----------------------------------------------------------------------


def test_unauthenticated_requests_are_refused(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    assert http_get(jupyter.url("bokeh-proxy/api/status"))[0] == 403
    status, headers, _ = http_get(autoload_url(proxied))
    assert status == 403  # not a redirect to the login page: nothing here is a page
    assert "Location" not in headers
    assert http_get(jupyter.proxy_url(proxied.bokeh.port, "/static/js/bokeh.min.js"))[0] == 403
    assert http_get(autoload_url(proxied), {"Authorization": "token wrong"})[0] == 403
    status, _, _ = asyncio.run(ws_handshake(ws_url(proxied.app_url()), {}, ("bokeh", "x")))
    assert status == 403


def test_ports_not_allowed_are_refused(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    # Not even the Jupyter server's own port is reachable through the proxy.
    for port in (proxied.refused_port, jupyter.port):
        url = jupyter.proxy_url(port, "/basic")
        assert (
            http_get(url + "/autoload.js?bokeh-autoload-element=x", jupyter.auth_headers)[0] == 403
        )
        status, _, _ = asyncio.run(ws_handshake(ws_url(url), jupyter.auth_headers, ("bokeh", "x")))
        assert status == 403


def test_there_is_no_way_to_name_another_host(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    for path in (f"bokeh-proxy/example.com:{proxied.bokeh.port}/", "bokeh-proxy/example.com/"):
        assert http_get(jupyter.url(path), jupyter.auth_headers)[0] == 404


def test_an_allowed_port_without_a_server_is_a_bad_gateway(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    url = jupyter.proxy_url(proxied.dead_port, "/basic")
    assert http_get(url + "/autoload.js?bokeh-autoload-element=x", jupyter.auth_headers)[0] == 502
    status, _, _ = asyncio.run(ws_handshake(ws_url(url), jupyter.auth_headers, ("bokeh", "x")))
    assert status == 502


def test_only_get_and_head_are_relayed(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    static = jupyter.proxy_url(proxied.bokeh.port, "/static/js/bokeh.min.js")
    status, headers, body = http_get(static, jupyter.auth_headers, method="HEAD")
    assert (status, body) == (200, b"")
    assert "javascript" in headers["Content-Type"]
    url = jupyter.proxy_url(proxied.bokeh.port, "/basic")
    # POST is refused before it is relayed (Jupyter's XSRF check, then 405).
    assert http_get(url, jupyter.auth_headers, method="POST")[0] in (403, 405)
    assert http_get(url, jupyter.auth_headers, method="DELETE")[0] in (403, 405)


def login_cookie(proxied: Proxied) -> dict[str, str]:
    """A ``Cookie`` header as a browser has it after logging in with the token."""
    _, headers, _ = http_get(proxied.jupyter.url("api/status"), proxied.jupyter.auth_headers)
    cookie = http.cookies.SimpleCookie(headers["Set-Cookie"])
    return {"Cookie": "; ".join(f"{name}={morsel.coded_value}" for name, morsel in cookie.items())}


def test_cross_site_requests_are_refused(proxied: Proxied) -> None:
    # Browsers authenticate with the login cookie, which a page on another site
    # could make them send; Jupyter skips origin checks for token headers only.
    cookie = login_cookie(proxied)
    assert http_get(autoload_url(proxied), cookie)[0] == 200
    assert http_get(autoload_url(proxied), {**cookie, "Sec-Fetch-Site": "cross-site"})[0] == 403
    url = ws_url(proxied.app_url())
    evil = {**cookie, "Origin": "http://evil.example"}
    assert asyncio.run(ws_handshake(url, evil, ("bokeh", "x")))[0] == 403
    same = {**cookie, "Origin": proxied.jupyter.origin}
    assert asyncio.run(ws_handshake(url, same, ("bokeh", "x")))[0] == 101


# -- the autoload script -----------------------------------------------------------


def test_autoload_script_points_resources_and_websocket_through_the_proxy(
    proxied: Proxied,
) -> None:
    jupyter = proxied.jupyter
    # As a browser on a hub would ask: its own host name, the hub's prefix.
    browser_app = f"https://hub.example:8443/user/test/bokeh-proxy/{proxied.bokeh.port}/basic"
    headers = {
        **jupyter.auth_headers,
        "Cookie": "username-hub=SECRET-LOGIN; _xsrf=SECRET-XSRF",
        "Origin": jupyter.origin,
        "Referer": jupyter.url("lab?token=" + jupyter.token),
        "Bokeh-Session-Id": "remote-proxy-autoload",
    }
    status, response_headers, body = http_get(autoload_url(proxied, browser_app), headers)
    assert status == 200, body[:300]
    script = body.decode()
    assert response_headers["Content-Type"].startswith("application/javascript")
    assert "no-store" in response_headers["Cache-Control"]
    # Jupyter may refresh its own login cookie; nothing else may set cookies on its origin.
    assert all(
        name.startswith("username-")
        for name in http.cookies.SimpleCookie(response_headers.get("Set-Cookie", ""))
    )

    urls = set(re.findall(r"https?://[^\"'\s]+", script))
    assert SENTINEL not in script
    assert any("/static/js/bokeh.min.js" in url for url in urls), urls
    root = browser_app.removesuffix("/basic")
    assert all(url.startswith(root) for url in urls), urls

    payload = token_payload(script)
    assert payload["session_id"] == "remote-proxy-autoload"
    sent = {name.lower(): value for name, value in payload["headers"].items()}
    assert payload["cookies"] == {}
    for private in ("authorization", "cookie", "origin", "referer"):
        assert private not in sent, sent
    assert proxied.jupyter.token not in script


def test_autoload_refuses_an_absolute_url_that_is_not_the_proxys(proxied: Proxied) -> None:
    headers = proxied.jupyter.auth_headers
    port = proxied.bokeh.port
    for absolute in (
        "http://evil.example/somewhere/basic",  # another path
        f'http://x/user/test/bokeh-proxy/{port}"+alert(1)+"/basic',  # script injection
        f"http://x/user/test/bokeh-proxy/{port}/other",  # another app
    ):
        assert http_get(autoload_url(proxied, absolute), headers)[0] == 400, absolute


def test_static_resources_come_through(proxied: Proxied) -> None:
    status, headers, body = http_get(
        proxied.jupyter.proxy_url(proxied.bokeh.port, "/static/js/bokeh.min.js"),
        proxied.jupyter.auth_headers,
    )
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert len(body) > 100_000


def test_a_redirect_stays_behind_the_proxy(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    request = urllib.request.Request(
        jupyter.proxy_url(proxied.bokeh.port, "/"), headers=jupyter.auth_headers
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as raised:
        opener.open(request, timeout=30)
    assert raised.value.code == 302
    assert raised.value.headers["Location"] == f"/user/test/bokeh-proxy/{proxied.bokeh.port}/basic"


# -- the websocket -----------------------------------------------------------------


def test_websocket_keeps_the_bokeh_subprotocols_and_sends_no_origin(proxied: Proxied) -> None:
    jupyter = proxied.jupyter
    headers = {**jupyter.auth_headers, "Bokeh-Session-Id": "remote-proxy-ws"}
    _, _, body = http_get(autoload_url(proxied), headers)
    token = re.search(r'"token":"([^"]+)"', body.decode())
    assert token is not None
    # The browser's Origin is Jupyter's; the Bokeh server only allows its own, so the
    # handshake succeeds only because the proxy does not pass the Origin on.
    browser = {**jupyter.auth_headers, "Origin": jupyter.origin}
    status, protocol, first = asyncio.run(
        ws_handshake(ws_url(proxied.app_url()), browser, ("bokeh", token.group(1)))
    )
    assert (status, protocol, first) == (101, "bokeh", "ACK")


def test_an_upstream_refusal_reaches_the_client_as_its_http_status(proxied: Proxied) -> None:
    with pytest.raises(HandshakeRejected, match="404"):
        pull_session(
            url=proxied.app_url("no_such_app"), headers=proxied.jupyter.auth_headers, timeout=10
        )


def test_a_session_through_the_proxy_syncs_both_ways(proxied: Proxied) -> None:
    url, headers = proxied.app_url(), proxied.jupyter.auth_headers
    with pull_session(url=url, headers=headers, timeout=10) as session:
        doc = session.document
        assert doc.get_model_by_name("div").text == "hello"
        doc.get_model_by_name("slider").value = 42  # the app answers with echo.text
        echo = doc.get_model_by_name("echo")
        deadline = time.monotonic() + 10
        while echo.text != "slider=42" and time.monotonic() < deadline:
            session.force_roundtrip()  # applies the patches that arrived before its reply
        assert echo.text == "slider=42"
