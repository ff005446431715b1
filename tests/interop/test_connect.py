"""Connecting to a real ``bokeh serve``: success, every kind of failure, and the options.

PROTOCOL.md §7 checklist items 1, 2, 3, 8, 9, 10, 35, 36 and issue #2 point 8.
"""

from __future__ import annotations

import time

import pytest
from bokeh_server import BokehServer, StartBokehServer, find_free_port

from bokeh_nb_client import ClientSession, pull_session
from bokeh_nb_client.exceptions import (
    BokehClientError,
    ConnectError,
    ConnectionClosedError,
    HandshakeRejected,
    ServerError,
    Timeout,
)

pytestmark = pytest.mark.interop

SECRET = "x" * 44


def test_minimal_connect_and_disconnect(bokeh_server: BokehServer) -> None:
    session = ClientSession(websocket_url=bokeh_server.ws_url("basic"))
    assert not session.connected
    session.connect()
    assert session.connected
    assert session.document is None
    session.close()
    assert not session.connected
    session.close()  # a second close does no harm


def test_request_server_info(bokeh_server: BokehServer) -> None:
    import bokeh

    with ClientSession(websocket_url=bokeh_server.ws_url("basic")) as session:
        info = session.request_server_info()
        assert session.document is None
        assert info["version_info"]["bokeh"] == bokeh.__version__
        assert info["version_info"]["server"] == bokeh.__version__


def test_disconnect_on_protocol_error(bokeh_server: BokehServer) -> None:
    """A bogus binary frame makes the server close with 10001; the session notices.

    No reconnect policy: the session must end with the server's close code.
    """
    session = ClientSession(websocket_url=bokeh_server.ws_url("basic"), reconnect=None)
    session.connect()
    conn = session.async_session._conn
    assert conn is not None

    async def send_garbage() -> None:
        await conn._transport.send([b"not a header"])

    session._run(send_garbage())
    with pytest.raises(ConnectionClosedError) as info:
        session.force_roundtrip()
    assert info.value.code == 10001
    assert not session.connected
    assert session.error_code == 10001
    session.close()


def test_prefix(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"], extra_args=("--prefix", "foo"))
    with pull_session(url=server.http_url("basic")) as session:
        assert "/foo/basic/ws" in session.url
        assert session.document is not None
    wrong = f"http://127.0.0.1:{server.port}/basic"
    with pytest.raises(HandshakeRejected) as info:
        pull_session(url=wrong)
    assert info.value.status == 404


def test_wrong_app_path_is_404_and_oserror(bokeh_server: BokehServer) -> None:
    with pytest.raises(OSError, match="404") as info:
        pull_session(url=bokeh_server.http_url("file_not_found"))
    assert isinstance(info.value, HandshakeRejected)
    assert info.value.status == 404


def test_refused_is_fast_and_typed() -> None:
    port = find_free_port()
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        pull_session(url=f"http://127.0.0.1:{port}/app", timeout=5)
    assert time.monotonic() - started < 5
    assert not isinstance(info.value, HandshakeRejected)
    assert str(port) in str(info.value)


def test_unresolvable_host_is_connect_error() -> None:
    with pytest.raises(ConnectError):
        pull_session(url="http://no-such-host.invalid:5006/app", timeout=10)


def test_origin_refused_is_403(bokeh_server: BokehServer) -> None:
    with pytest.raises(HandshakeRejected) as info:
        pull_session(
            url=bokeh_server.http_url("basic"), headers={"Origin": "http://evil.example:80"}
        )
    assert info.value.status == 403


def test_no_origin_header_by_default_is_accepted(start_bokeh_server: StartBokehServer) -> None:
    """A server whose origin allowlist names some other host still accepts us."""
    server = start_bokeh_server(
        apps=["basic"], extra_args=("--allow-websocket-origin", "example.com")
    )
    with pull_session(url=server.http_url("basic")) as session:
        assert session.connected


def test_signed_sessions(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(
        apps=["basic"],
        extra_args=("--session-ids", "signed"),
        env={"BOKEH_SECRET_KEY": SECRET},
    )
    with pull_session(url=server.http_url("basic"), secret_key=SECRET) as session:
        assert "." in session.id  # a signed id
        assert session.document is not None
    with pytest.raises(HandshakeRejected, match="token") as info:
        pull_session(url=server.http_url("basic"), secret_key="y" * 44)
    assert info.value.status is None
    with pytest.raises(HandshakeRejected):
        pull_session(url=server.http_url("basic"), sign_sessions=False)


def test_signing_from_environment_read_at_call_time(
    start_bokeh_server: StartBokehServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_bokeh_server(
        apps=["basic"],
        extra_args=("--session-ids", "signed"),
        env={"BOKEH_SECRET_KEY": SECRET},
    )
    monkeypatch.setenv("BOKEH_SECRET_KEY", SECRET)
    monkeypatch.setenv("BOKEH_SIGN_SESSIONS", "true")
    with pull_session(url=server.http_url("basic")) as session:
        assert session.connected


def test_auth_module_cookies_and_headers(
    start_bokeh_server: StartBokehServer, apphelpers_dir: object
) -> None:
    from testapps import APPHELPERS_DIR

    server = start_bokeh_server(
        apps=["basic"], extra_args=("--auth-module", str(APPHELPERS_DIR / "auth_cookie.py"))
    )
    with pull_session(url=server.http_url("basic"), cookies={"user": "alice"}) as session:
        assert session.connected
    with pull_session(url=server.http_url("basic"), headers={"X-User": "bob"}) as session:
        assert session.connected
    with pytest.raises(HandshakeRejected):
        pull_session(url=server.http_url("basic"))


def test_query_arguments_reach_the_app(bokeh_server: BokehServer) -> None:
    import json

    with pull_session(
        url=bokeh_server.http_url("args"), arguments={"a": "1", "b c": "d&e"}
    ) as session:
        assert session.document is not None
        div = session.document.select_one({"name": "args"})
        assert json.loads(div.text) == {"a": ["1"], "b c": ["d&e"]}


def test_server_error_reply_is_typed(bokeh_server: BokehServer) -> None:
    """Pushing a model the server cannot resolve gets an ERROR reply: ServerError."""
    from bokeh.core.properties import Int
    from bokeh.document import Document
    from bokeh.model import Model

    class OnlyOnTheClient(Model):
        n = Int(1)

    doc = Document()
    doc.add_root(OnlyOnTheClient())
    session = ClientSession(websocket_url=bokeh_server.ws_url("empty"))
    with pytest.raises(ServerError) as info:
        session.push(doc)
    assert "OnlyOnTheClient" in info.value.text
    assert isinstance(info.value, RuntimeError)
    assert session.connected  # an ERROR reply does not close the connection
    session.force_roundtrip()
    session.close()


def test_server_killed_mid_session_fails_fast(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"])
    session = pull_session(url=server.http_url("basic"), timeout=10, reconnect=None)
    server.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError) as info:
        session.force_roundtrip()
    assert time.monotonic() - started < 5
    assert info.value.code == 1006
    assert not session.connected
    with pytest.raises(ConnectionClosedError):
        session.check_connection_errors()
    session.close()


def test_frozen_server_times_out(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"])
    server.warm("basic")
    session = pull_session(url=server.http_url("basic"), timeout=1)
    server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            session.force_roundtrip()
        assert isinstance(info.value, TimeoutError)
        assert time.monotonic() - started < 4
    finally:
        server.resume()
    session.close()


def test_keepalive_pings_are_answered(start_bokeh_server: StartBokehServer) -> None:
    """With 100 ms pings the server keeps pinging us while we wait; we stay connected."""
    server = start_bokeh_server(apps=["basic"], extra_args=("--keep-alive", "100"))
    with pull_session(url=server.http_url("basic")) as session:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            session.force_roundtrip()
        assert session.connected


def test_errors_share_one_root(bokeh_server: BokehServer) -> None:
    with pytest.raises(BokehClientError):
        pull_session(url=bokeh_server.http_url("nope"))
