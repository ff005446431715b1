"""Tests of the ``bokeh serve`` fixtures themselves (tests/bokeh_server.py, conftest.py).

They talk to the servers with urllib and a raw aiohttp websocket, never through
bokeh_nb_client, so a failure here points at the test infrastructure or at
bokeh, not at the package. Two checks use ``bokeh.client`` as the reference
client to prove that the apps' documents are what the other tests expect.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import pytest
from apphelpers.custom_models import BytesHolder
from bokeh.client import pull_session
from bokeh.core.types import ID
from bokeh.models import Div
from bokeh.util.token import generate_jwt_token
from bokeh_server import BokehServer, StartBokehServer, normalize_prefix, port_is_free

pytestmark = pytest.mark.interop

EXPECTED_APPS = (
    "args",
    "basic",
    "bytes_roots",
    "changes",
    "empty",
    "events",
    "flood",
    "large",
    "partial",
    "sink",
    "ticker",
    "zero_copy",
)


def http_status(url: str, timeout: float = 10.0) -> int:
    """Return the HTTP status of a GET of ``url`` (redirects followed)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def unsigned_token(session_id: str | None = None) -> str:
    """Mint an unsigned token for a new session id, as bokeh.client does."""
    sid = session_id or uuid.uuid4().hex
    return generate_jwt_token(ID(sid), secret_key=None, signed=False, expiration=300)


async def receive_ack(
    ws_url: str, headers: dict[str, str] | None = None
) -> tuple[str | None, dict[str, object]]:
    """Connect to ``ws_url`` and return the selected subprotocol and the first header.

    Raises:
        AssertionError: The first message is not a text frame (the server closed).
    """
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            ws_url, protocols=("bokeh", unsigned_token()), max_msg_size=0, headers=headers
        ) as ws,
    ):
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        header: dict[str, object] = json.loads(message.data)
        return ws.protocol, header


def group_exists(pgid: int) -> bool:
    """Whether any process is left in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# The session-wide server ---------------------------------------------------------


def test_session_server_hosts_every_app_at_its_stem(bokeh_server: BokehServer) -> None:
    assert bokeh_server.app_names == EXPECTED_APPS
    assert bokeh_server.prefix == ""
    for name in EXPECTED_APPS:
        assert http_status(bokeh_server.http_url(name)) == 200, name
    assert http_status(bokeh_server.http_url("no_such_app")) == 404


def test_urls(bokeh_server: BokehServer) -> None:
    base = f"127.0.0.1:{bokeh_server.port}"
    assert bokeh_server.host == "127.0.0.1"
    assert bokeh_server.http_url() == f"http://{base}"
    assert bokeh_server.http_url("basic") == f"http://{base}/basic"
    assert bokeh_server.http_url("/basic/") == f"http://{base}/basic"
    assert bokeh_server.ws_url("basic") == f"ws://{base}/basic/ws"
    assert bokeh_server.ws_url() == f"ws://{base}/ws"


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, ""), ("", ""), ("/", ""), ("foo", "/foo"), ("/foo", "/foo"), ("/foo/", "/foo")],
)
def test_normalize_prefix(given: str | None, expected: str) -> None:
    assert normalize_prefix(given) == expected


def test_raw_websocket_receives_ack(bokeh_server: BokehServer) -> None:
    protocol, header = asyncio.run(receive_ack(bokeh_server.ws_url("basic")))
    assert protocol == "bokeh"
    assert header["msgtype"] == "ACK"


def test_server_options_are_in_effect(bokeh_server: BokehServer) -> None:
    log = bokeh_server.log_text()
    assert "Keep-alive ping configured every 1000 milliseconds" in log
    assert "--unused-session-lifetime 2000" in log  # the command line heads the log


def test_bokeh_client_pulls_the_custom_bytes_models(bokeh_server: BokehServer) -> None:
    with pull_session(url=bokeh_server.http_url("bytes_roots")) as session:
        a = session.document.select_one({"name": "a"})
        b = session.document.select_one({"name": "b"})
    assert isinstance(a, BytesHolder)
    assert isinstance(b, BytesHolder)
    assert (a.foo, a.data) == (42, b"\x00\x01\x02")
    assert (b.foo, b.data) == (43, b"")


def test_args_app_shows_the_session_arguments(bokeh_server: BokehServer) -> None:
    url = bokeh_server.http_url("args")
    with pull_session(url=url, arguments={"foo": "bar", "n": "1"}) as session:
        div = session.document.select_one({"name": "args"})
    assert isinstance(div, Div)
    assert json.loads(div.text) == {"foo": ["bar"], "n": ["1"]}


# Private servers from the factory ------------------------------------------------


def test_prefix(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(["basic"], extra_args=("--prefix", "foo"))
    assert server.prefix == "/foo"
    assert server.http_url("basic") == f"http://127.0.0.1:{server.port}/foo/basic"
    assert server.ws_url("basic") == f"ws://127.0.0.1:{server.port}/foo/basic/ws"
    assert http_status(server.http_url("basic")) == 200
    assert http_status(f"http://127.0.0.1:{server.port}/basic") == 404
    _, header = asyncio.run(receive_ack(server.ws_url("basic")))
    assert header["msgtype"] == "ACK"


def test_auth_module_accepts_cookie_or_header(
    start_bokeh_server: StartBokehServer, apphelpers_dir: Path
) -> None:
    auth = ("--auth-module", str(apphelpers_dir / "auth_cookie.py"))
    server = start_bokeh_server(["basic"], extra_args=auth)
    url = server.ws_url("basic")
    for headers in ({"Cookie": "user=alice"}, {"X-User": "bob"}):
        _, header = asyncio.run(receive_ack(url, headers))
        assert header["msgtype"] == "ACK", headers
    # Without a user the server aborts the websocket after the 101 (PROTOCOL.md §1.8).
    with pytest.raises(AssertionError, match="CLOSED"):
        asyncio.run(receive_ack(url))


def test_pause_and_resume(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(["sink"])
    server.pause()
    assert server.paused
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(server.http_url("sink"), timeout=0.5)
    server.resume()
    assert not server.paused
    assert http_status(server.http_url("sink")) == 200


def test_restart_keeps_the_port_and_drops_connections(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(["basic"])
    port, old_pid = server.port, server.pid

    async def connect_restart_and_receive() -> aiohttp.WSMsgType:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                server.ws_url("basic"), protocols=("bokeh", unsigned_token()), max_msg_size=0
            ) as ws,
        ):
            for _ in range(3):  # the ACK: header, metadata, content
                await ws.receive(timeout=10)
            await asyncio.to_thread(server.restart)
            message = await ws.receive(timeout=10)
            return message.type

    closed = asyncio.run(connect_restart_and_receive())
    assert closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert server.port == port
    assert server.pid != old_pid
    assert old_pid is not None
    assert not group_exists(old_pid)
    assert http_status(server.http_url("basic")) == 200
    assert server.log_text().count("Starting Bokeh server version") == 2


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_stop_and_kill_leave_no_process(start_bokeh_server: StartBokehServer, how: str) -> None:
    server = start_bokeh_server(["empty"])
    pid = server.pid
    assert pid is not None
    assert group_exists(pid)
    getattr(server, how)()
    assert not server.is_running()
    assert not group_exists(pid)
    getattr(server, how)()  # idempotent
    assert port_is_free(server.port)


def test_stop_resumes_a_paused_server(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(["empty"])
    pid = server.pid
    assert pid is not None
    server.pause()
    server.stop()
    assert not group_exists(pid)


def test_startup_failure_reports_the_log(start_bokeh_server: StartBokehServer) -> None:
    # Signed session ids need BOKEH_SECRET_KEY; without it bokeh serve exits at once.
    with pytest.raises(RuntimeError, match=r"(?s)exited with code.*bokeh serve log"):
        start_bokeh_server(
            ["empty"], extra_args=("--session-ids", "signed"), env={"BOKEH_SECRET_KEY": None}
        )


def test_free_port(free_port: int) -> None:
    assert 0 < free_port < 65536
    assert port_is_free(free_port)
