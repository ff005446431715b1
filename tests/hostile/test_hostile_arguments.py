"""Bad arguments from users: a clear TypeError/ValueError naming the parameter, at once.

Where a call could reach a server, it is pointed at the fake server, and the test
checks that the server saw no HTTP request: bad arguments are refused before any
network I/O.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest
from bokeh.document import Document
from hostile_server import Endpoint, FakeServer, Peer

from bokeh_nb_client import (
    AsyncClientSession,
    ClientSession,
    pull_session,
    pull_session_async,
    push_session,
    push_session_async,
)


async def _serve(peer: Peer) -> None:
    await peer.handshake()
    await peer.serve()


@pytest.fixture
def endpoint(server: FakeServer) -> Endpoint:
    """A well-behaved app: any request reaching it would be counted."""
    return server.endpoint(_serve)


Call = Callable[[Endpoint], Any]


def wrong(value: object) -> Any:
    """A value of the wrong type, passed on purpose (the type checker would refuse it)."""
    return value


def bad(
    param: str,
    call: Call,
    error: type[Exception] | tuple[type[Exception], ...] = ValueError,
    *,
    xfail: str | None = None,
    id: str,
) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(param, call, error, id=id, marks=marks)


CASES = [
    bad("url", lambda e: pull_session(url="ftp://x"), id="pull_session url=ftp://x"),
    bad(
        "url",
        lambda e: pull_session(url="http://"),
        id="pull_session url=http://",
    ),
    bad("url", lambda e: pull_session(url="localhost:5006"), id="pull_session url=localhost:5006"),
    bad("url", lambda e: pull_session(url="ws://x/ws"), id="pull_session url=ws://x/ws"),
    bad("url", lambda e: pull_session(url=""), id="pull_session url=''"),
    bad("url", lambda e: pull_session(url="http://x?a=1"), id="pull_session url with a query"),
    bad(
        "url",
        lambda e: pull_session(url="http://x:99999"),
        id="pull_session url with port 99999",
    ),
    bad("url", lambda e: pull_session(url=wrong(5)), TypeError, id="pull_session url=5"),
    bad("url", lambda e: pull_session(url=wrong(None)), TypeError, id="pull_session url=None"),
    bad(
        "app_path",
        lambda e: pull_session(url=e.http_url, app_path=wrong(5)),
        TypeError,
        id="pull_session app_path=5",
    ),
    bad(
        "websocket_url",
        lambda e: ClientSession(websocket_url="http://x/ws"),
        id="ClientSession websocket_url=http://x/ws",
    ),
    bad(
        "websocket_url",
        lambda e: ClientSession(websocket_url=wrong(5)),
        TypeError,
        id="ClientSession websocket_url=5",
    ),
    bad(
        "websocket_url",
        lambda e: ClientSession(websocket_url="ws://"),
        id="ClientSession websocket_url=ws://",
    ),
    bad(
        "session_id",
        lambda e: pull_session(url=e.http_url, session_id=wrong(5)),
        (TypeError, ValueError),
        id="pull_session session_id=5",
    ),
    bad(
        "session_id",
        lambda e: pull_session(url=e.http_url, session_id=""),
        id="pull_session session_id=''",
    ),
    bad(
        "arguments",
        lambda e: pull_session(url=e.http_url, arguments=wrong([1])),
        TypeError,
        id="pull_session arguments=[1]",
    ),
    bad(
        "arguments",
        lambda e: pull_session(url=e.http_url, arguments=wrong({"a": 1})),
        TypeError,
        id="pull_session arguments={'a': 1}",
    ),
    bad(
        "headers",
        lambda e: pull_session(url=e.http_url, headers=["x"]),
        TypeError,
        id="pull_session headers=['x']",
    ),
    bad(
        "max_message_size",
        lambda e: pull_session(url=e.http_url, max_message_size=-1),
        id="pull_session max_message_size=-1",
    ),
    bad(
        "max_message_size",
        lambda e: pull_session(url=e.http_url, max_message_size=wrong(1.5)),
        (TypeError, ValueError),
        id="pull_session max_message_size=1.5",
    ),
    bad(
        "max_message_size",
        lambda e: pull_session(url=e.http_url, max_message_size=True),
        (TypeError, ValueError),
        id="pull_session max_message_size=True",
    ),
    bad("timeout", lambda e: pull_session(url=e.http_url, timeout=0), id="pull_session timeout=0"),
    bad(
        "timeout", lambda e: pull_session(url=e.http_url, timeout=-1), id="pull_session timeout=-1"
    ),
    bad(
        "timeout",
        lambda e: pull_session(url=e.http_url, timeout="2"),
        (TypeError, ValueError),
        id="pull_session timeout='2'",
    ),
    bad(
        "timeout",
        lambda e: pull_session(url=e.http_url, timeout=math.nan),
        id="pull_session timeout=nan",
    ),
    bad(
        "token_expiration",
        lambda e: pull_session(url=e.http_url, token_expiration=0),
        id="pull_session token_expiration=0",
    ),
    bad(
        "document",
        lambda e: push_session(wrong(5), url=e.http_url),
        TypeError,
        id="push_session document=5",
    ),
]


def attempt(call: Call, endpoint: Endpoint) -> None:
    session = call(endpoint)
    session.close()  # only reached when nothing was refused


@pytest.mark.parametrize(("param", "call", "error"), CASES)
def test_bad_argument_is_refused_before_any_io(
    server: FakeServer,
    endpoint: Endpoint,
    param: str,
    call: Call,
    error: type[Exception] | tuple[type[Exception], ...],
) -> None:
    requests_before = server.http_requests
    with pytest.raises(error) as info:
        attempt(call, endpoint)
    assert param.lower() in str(info.value).lower(), f"{param} not named in {info.value!r}"
    assert server.http_requests == requests_before, "a bad argument reached the network"


def test_async_api_refuses_the_same_arguments(server: FakeServer, endpoint: Endpoint) -> None:
    requests_before = server.http_requests

    async def main() -> None:
        with pytest.raises(ValueError, match=r"(?i)url"):
            await pull_session_async(url="ftp://x")
        with pytest.raises(ValueError, match="timeout"):
            await pull_session_async(url=endpoint.http_url, timeout=0)
        with pytest.raises(ValueError, match="max_message_size"):
            AsyncClientSession(websocket_url=endpoint.ws_url, max_message_size=-1)
        with pytest.raises(ValueError, match="websocket_url"):
            AsyncClientSession(websocket_url="http://x/ws")
        with pytest.raises(TypeError, match="Document"):
            await push_session_async(wrong(Document), url=endpoint.http_url)

    asyncio.run(main())
    assert server.http_requests == requests_before
