"""TLS termination at nginx in front of ``bokeh serve --prefix bokeh --use-xheaders``.

The client talks ``wss://`` to nginx, which holds a certificate from a private CA
(``trustme``) and proxies the websocket upgrade over plain HTTP/1.1 to the Bokeh
server. Shown here:

* with an ``ssl.SSLContext`` that trusts the CA, a session works end to end (pull,
  a change, the server's reaction), sync and async, and the app sees the original
  scheme through ``X-Forwarded-Proto``;
* default verification (``ssl=None``: the system's CAs), a context trusting a
  different CA, and a trusted certificate for another host name all fail with
  ``ConnectError`` naming the TLS/certificate failure, not an HTTP status;
* ``ssl=False`` skips verification and works;
* plain ``http://`` sent to the TLS port is a ``HandshakeRejected`` with nginx's 400.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
import trustme
from bokeh.models.widgets import Div, Slider
from bokeh_server import BokehServer

from bokeh_nb_client import ClientSession, pull_session, pull_session_async
from bokeh_nb_client.exceptions import ConnectError, HandshakeRejected

from .deploy_support import StartNginx, StartUpstream, TlsSetup, named, write_server_cert
from .nginx_proxy import Nginx, TlsFiles, proxy_config

pytestmark = pytest.mark.interop

PREFIX_ARGS = ("--prefix", "bokeh", "--use-xheaders")
TLS_FAILURE = r"(?i)TLS failure.*certificate"


def _start_tls_proxy(
    start_upstream: StartUpstream, start_nginx: StartNginx, files: TlsFiles
) -> tuple[Nginx, BokehServer]:
    server = start_upstream(apps=["basic", "whoami"], extra_args=PREFIX_ARGS)
    nginx = start_nginx(proxy_config(upstream_ports=[server.port], tls=files), tls=True)
    return nginx, server


@pytest.fixture
def tls_proxy(
    start_upstream: StartUpstream, start_nginx: StartNginx, tls: TlsSetup
) -> tuple[Nginx, BokehServer]:
    """nginx terminating TLS with the ``tls`` certificate, in front of basic + whoami."""
    return _start_tls_proxy(start_upstream, start_nginx, tls.files)


def _slider_roundtrip(session: ClientSession, value: int) -> None:
    named(session.document, "slider", Slider).value = value
    session.force_roundtrip()
    assert named(session.document, "echo", Div).text == f"slider={value}"


def test_trusted_ca_works_end_to_end(tls_proxy: tuple[Nginx, BokehServer], tls: TlsSetup) -> None:
    nginx, server = tls_proxy
    context = tls.client_context()
    with pull_session(url=nginx.url("/bokeh/basic"), ssl=context) as session:
        assert session.url == f"wss://127.0.0.1:{nginx.port}/bokeh/basic/ws"
        assert session.app_url == nginx.url("/bokeh/basic")
        assert session.connected
        assert named(session.document, "div", Div).text == "hello"
        _slider_roundtrip(session, 7)
        _slider_roundtrip(session, 8)
        assert session.status.server_version is not None

    with pull_session(url=nginx.url("/bokeh/whoami"), ssl=context) as session:
        facts = json.loads(named(session.document, "whoami", Div).text)
    # nginx set X-Forwarded-Proto, and --use-xheaders made tornado trust it.
    assert facts["forwarded_proto"] == "https"
    assert facts["protocol"] == "https"

    # Both websockets were upgraded by the one upstream (logged once they ended).
    upstream = f"upstream=127.0.0.1:{server.port} upstream_status=101"
    nginx.wait_for_access(f'"GET /bokeh/basic/ws HTTP/1.1" 101 {upstream}')
    nginx.wait_for_access(f'"GET /bokeh/whoami/ws HTTP/1.1" 101 {upstream}')


def test_trusted_ca_works_with_the_async_api(
    tls_proxy: tuple[Nginx, BokehServer], tls: TlsSetup
) -> None:
    nginx, _server = tls_proxy

    async def scenario() -> str:
        session = await pull_session_async(url=nginx.url("/bokeh/basic"), ssl=tls.client_context())
        async with session:
            named(session.document, "slider", Slider).value = 42
            await session.force_roundtrip()
            return str(named(session.document, "echo", Div).text)

    assert asyncio.run(scenario()) == "slider=42"


@pytest.mark.parametrize("trust", ["system CAs (ssl=None)", "another private CA"])
def test_untrusted_certificate_is_a_connect_error(
    tls_proxy: tuple[Nginx, BokehServer], trust: str
) -> None:
    nginx, _server = tls_proxy
    context: ssl.SSLContext | None = None
    if trust == "another private CA":
        other = trustme.CA()
        context = ssl.create_default_context(cadata=other.cert_pem.bytes().decode("ascii"))
    with pytest.raises(ConnectError, match=TLS_FAILURE) as caught:
        pull_session(url=nginx.url("/bokeh/basic"), ssl=context)
    assert not isinstance(caught.value, HandshakeRejected)  # no HTTP exchange took place
    assert caught.value.url == f"wss://127.0.0.1:{nginx.port}/bokeh/basic/ws"
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    # Nothing reached the Bokeh server: the handshake failed before any request.
    assert "/bokeh/basic/ws" not in nginx.access_log()


def test_trusted_certificate_for_another_host_is_a_connect_error(
    start_upstream: StartUpstream, start_nginx: StartNginx, tls: TlsSetup, tmp_path: Path
) -> None:
    files = write_server_cert(tls.ca, tmp_path / "other-host", "bokeh.example.invalid")
    nginx, _server = _start_tls_proxy(start_upstream, start_nginx, files)
    with pytest.raises(ConnectError, match=TLS_FAILURE) as caught:
        pull_session(url=nginx.url("/bokeh/basic"), ssl=tls.client_context())
    assert "127.0.0.1" in str(caught.value)
    assert "mismatch" in str(caught.value).lower()


def test_ssl_false_skips_verification(tls_proxy: tuple[Nginx, BokehServer]) -> None:
    nginx, _server = tls_proxy
    with pull_session(url=nginx.url("/bokeh/basic"), ssl=False) as session:
        _slider_roundtrip(session, 3)


def test_plain_http_to_the_tls_port_is_rejected_with_nginx_400(
    tls_proxy: tuple[Nginx, BokehServer],
) -> None:
    nginx, _server = tls_proxy
    plain = nginx.url("/bokeh/basic").replace("https://", "http://")
    with pytest.raises(HandshakeRejected) as caught:
        pull_session(url=plain)
    assert caught.value.status == 400
