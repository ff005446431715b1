"""Port of bokeh's ``tests/unit/bokeh/client/`` (``test___init___client.py``,
``test_session__client.py``, ``test_util__client.py``): the public surface.

Each test runs against ``bokeh.client`` and ``bokeh_nb_client`` (the ``client``
fixture). Tests of bokeh.client's private classes (``ClientConnection``, the state
classes, ``WebSocketClientConnectionWrapper``) and the mock-based checks that a
``ClientSession`` method forwards to ``ClientConnection`` are not ported; the
README of this directory says why, test by test.
"""

from __future__ import annotations

import pytest
from tornado.ioloop import IOLoop

from .support import Client

BOKEH_CLIENT_ALL = (
    "ClientSession",
    "DEFAULT_SESSION_ID",
    "pull_session",
    "push_session",
    "show_session",
)


# -- test___init___client.py ---------------------------------------------------------------


def test___all__(client: Client) -> None:
    # bokeh checks __all__ == ALL; we export more (the async API, the status
    # panel...), so every name of bokeh.client's __all__ must be in ours.
    assert set(BOKEH_CLIENT_ALL) <= set(client.all_names)


@pytest.mark.parametrize("name", BOKEH_CLIENT_ALL)
def test_contents(client: Client, name: str) -> None:
    assert name in client.all_names
    assert hasattr(__import__(client.name, fromlist=[name]), name)


# -- test_session__client.py ---------------------------------------------------------------


def test_DEFAULT_SESSION_ID(client: Client) -> None:
    assert client.DEFAULT_SESSION_ID == "default"


def test_DEFAULT_SERVER_WEBSOCKET_URL(client: Client) -> None:
    assert client.DEFAULT_SERVER_WEBSOCKET_URL == "ws://localhost:5006/ws"


class Test_ClientSession:
    def test_creation_defaults(self, client: Client) -> None:
        s = client.ClientSession()
        assert s.connected is False
        assert s.document is None
        assert client.arguments_of(s) is None
        assert isinstance(s.id, str)
        assert len(s.id) == 44
        s.close()

    def test_creation_with_session_id(self, client: Client) -> None:
        s = client.ClientSession("sid")
        assert s.connected is False
        assert s.document is None
        assert client.arguments_of(s) is None
        assert s.id == "sid"
        s.close()

    def test_creation_with_ws_url(self, client: Client) -> None:
        # bokeh uses websocket_url="wsurl"; ours validates URLs when the session is
        # created (DIFFERENCES.md), so a well-formed one is used here.
        s = client.ClientSession(websocket_url="ws://wsurl.example/ws")
        assert s.connected is False
        assert s.document is None
        assert client.arguments_of(s) is None
        assert client.url_of(s) == "ws://wsurl.example/ws"
        assert isinstance(s.id, str)
        assert len(s.id) == 44
        s.close()

    def test_creation_with_ioloop(self, client: Client) -> None:
        # bokeh passes io_loop="io_loop"; ours accepts only an event loop (a tornado
        # IOLoop or an asyncio loop), so a real, not running IOLoop is passed.
        loop = IOLoop()
        try:
            s = client.ClientSession(io_loop=loop)
            assert s.connected is False
            assert s.document is None
            assert client.arguments_of(s) is None
            assert isinstance(s.id, str)
            assert len(s.id) == 44
            s.close()
        finally:
            loop.close()

    def test_creation_with_arguments(self, client: Client) -> None:
        # bokeh passes arguments="args"; ours validates them as a mapping.
        s = client.ClientSession(arguments={"foo": "bar"})
        assert s.connected is False
        assert s.document is None
        assert client.arguments_of(s) == {"foo": "bar"}
        assert len(s.id) == 44
        s.close()

    def test_context_manager(self, client: Client) -> None:
        # bokeh mocks ClientConnection.close and checks it was called with "closed";
        # here the observable outcome: the session is a ClientSession, and closed.
        with client.ClientSession() as session:
            assert isinstance(session, client.ClientSession)
        assert not session.connected


# -- test_util__client.py ------------------------------------------------------------------


class Test_server_url_for_websocket_url:
    def test_with_ws(self, client: Client) -> None:
        assert client.server_url_for_websocket_url("ws://foo.com/ws") == "http://foo.com/"

    def test_with_wss(self, client: Client) -> None:
        assert client.server_url_for_websocket_url("wss://foo.com/ws") == "https://foo.com/"

    def test_bad_proto(self, client: Client) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - bokeh's check
            client.server_url_for_websocket_url("junk://foo.com/ws")

    def test_bad_ending(self, client: Client) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - bokeh's check
            client.server_url_for_websocket_url("ws://foo.com/junk")
        with pytest.raises(ValueError):  # noqa: PT011 - bokeh's check
            client.server_url_for_websocket_url("wss://foo.com/junk")


class Test_websocket_url_for_server_url:
    def test_with_http(self, client: Client) -> None:
        assert client.websocket_url_for_server_url("http://foo.com") == "ws://foo.com/ws"
        assert client.websocket_url_for_server_url("http://foo.com/") == "ws://foo.com/ws"

    def test_with_https(self, client: Client) -> None:
        assert client.websocket_url_for_server_url("https://foo.com") == "wss://foo.com/ws"
        assert client.websocket_url_for_server_url("https://foo.com/") == "wss://foo.com/ws"

    def test_bad_proto(self, client: Client) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - bokeh's check
            client.websocket_url_for_server_url("junk://foo.com")
