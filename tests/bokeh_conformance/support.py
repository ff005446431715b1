"""The two clients under test, and in-process Bokeh servers to test them against.

Test modules import from here (``from .support import ...``), never from conftest.

``CLIENTS`` holds one :class:`Client` per implementation: ``bokeh.client`` itself
(the reference) and ``bokeh_nb_client``. A test takes the ``client`` fixture and
runs once against each. Where bokeh's tests reach into ``bokeh.client``'s private
internals only to *observe* something (``_connection._loop_until``, a patched
``_handle_patch``), the adapter does the same observation through what each
implementation offers; the checks and numbers stay bokeh's.

:func:`in_process_server` is our version of bokeh's ``ManagedServerLoop``: a
``bokeh.server.server.Server`` on a fresh, not running tornado ``IOLoop`` in this
process, on a free port. Nothing runs that loop but the client under test, which
is given it as ``io_loop=`` (``bokeh.client`` runs it while it waits; so must we).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import bokeh.client
import bokeh.client.util
from bokeh.application import Application
from bokeh.server.server import Server
from tornado.ioloop import IOLoop

import bokeh_nb_client
from bokeh_nb_client.protocol import urls

__all__ = [
    "CLIENTS",
    "Client",
    "in_process_server",
    "round_trips_until",
    "url",
    "ws_url",
]

#: How many round trips ``loop_until`` allows before the test fails (not a time).
ROUND_TRIPS = 200


@dataclass(frozen=True)
class Client:
    """One implementation of the bokeh.client API, as the ported tests use it."""

    name: str
    ClientSession: Any
    pull_session: Any
    push_session: Any
    DEFAULT_SESSION_ID: str
    DEFAULT_SERVER_WEBSOCKET_URL: str
    session_module: Any  # the module ``show_session`` is looked up in by ``session.show``
    server_url_for_websocket_url: Callable[[str], str]
    websocket_url_for_server_url: Callable[[str], str]
    all_names: tuple[str, ...]
    loop_until: Callable[[Any, Callable[[], bool]], None]
    trap_incoming_patches: Callable[[Any, Any], list[Any]]
    send_garbage: Callable[[Any, Server], None]
    arguments_of: Callable[[Any], Any]
    url_of: Callable[[Any], str]

    def __repr__(self) -> str:
        return self.name


def _bokeh_loop_until(session: Any, predicate: Callable[[], bool]) -> None:
    session._connection._loop_until(predicate)


def round_trips_until(session: Any, predicate: Callable[[], bool]) -> None:
    """Round-trip with ``session``'s server until ``predicate()`` holds (ours).

    Each round trip applies what the server sent before its reply (and, with an
    ``io_loop``, runs the server's loop while it waits). A server that reacts
    in a later tick (Panel does) gets one more round trip each time.
    """
    for _ in range(ROUND_TRIPS):
        if predicate():
            return
        session.force_roundtrip()
    assert predicate(), f"still false after {ROUND_TRIPS} round trips"


def _bokeh_trap(session: Any, monkeypatch: Any) -> list[Any]:
    trapped: list[Any] = []
    monkeypatch.setattr(session, "_handle_patch", trapped.append)
    return trapped


def _ours_trap(session: Any, monkeypatch: Any) -> list[Any]:
    # Every change the session applies from the server has the session as setter.
    trapped: list[Any] = []
    own = session.async_session

    def record(event: Any) -> None:
        if getattr(event, "setter", None) is own:
            trapped.append(event)

    session.document.on_change(record)
    return trapped


def _bokeh_send_garbage(session: Any, server: Server) -> None:
    server.io_loop.add_callback(session._connection._socket.write_message, b"xx", binary=True)


def _ours_send_garbage(session: Any, server: Server) -> None:
    conn = session.async_session._conn

    async def send() -> None:
        await conn._transport.send([b"xx"])

    session._run(send())


CLIENTS = (
    Client(
        name="bokeh.client",
        ClientSession=bokeh.client.ClientSession,
        pull_session=bokeh.client.pull_session,
        push_session=bokeh.client.push_session,
        DEFAULT_SESSION_ID=bokeh.client.DEFAULT_SESSION_ID,
        DEFAULT_SERVER_WEBSOCKET_URL=bokeh.client.session.DEFAULT_SERVER_WEBSOCKET_URL,
        session_module=bokeh.client.session,
        server_url_for_websocket_url=bokeh.client.util.server_url_for_websocket_url,
        websocket_url_for_server_url=bokeh.client.util.websocket_url_for_server_url,
        all_names=tuple(bokeh.client.__all__),
        loop_until=_bokeh_loop_until,
        trap_incoming_patches=_bokeh_trap,
        send_garbage=_bokeh_send_garbage,
        arguments_of=lambda session: session._connection._arguments,
        url_of=lambda session: session._connection.url,
    ),
    Client(
        name="bokeh_nb_client",
        ClientSession=bokeh_nb_client.ClientSession,
        pull_session=bokeh_nb_client.pull_session,
        push_session=bokeh_nb_client.push_session,
        DEFAULT_SESSION_ID=bokeh_nb_client.DEFAULT_SESSION_ID,
        DEFAULT_SERVER_WEBSOCKET_URL=bokeh_nb_client.DEFAULT_SERVER_WEBSOCKET_URL,
        session_module=bokeh_nb_client.client,
        server_url_for_websocket_url=urls.server_url_for_websocket_url,
        websocket_url_for_server_url=urls.websocket_url_for_server_url,
        all_names=tuple(bokeh_nb_client.__all__),
        loop_until=round_trips_until,
        trap_incoming_patches=_ours_trap,
        send_garbage=_ours_send_garbage,
        arguments_of=lambda session: session.arguments,
        url_of=lambda session: session.url,
    ),
)


@contextlib.contextmanager
def in_process_server(application: Application, **server_kwargs: Any) -> Iterator[Server]:
    """A bokeh ``Server`` for ``application`` on a new IOLoop that nobody runs yet."""
    loop = IOLoop()
    server_kwargs.setdefault("address", "127.0.0.1")  # loopback only (bokeh's default: all)
    server = Server({"/": application}, io_loop=loop, port=0, **server_kwargs)
    try:
        server.start()
        yield server
    finally:
        server.unlisten()
        server.stop()
        loop.close(all_fds=True)


def url(server: Server, prefix: str = "") -> str:
    """The app's http URL, as bokeh's tests spell it."""
    return f"http://localhost:{server.port}{prefix}/"


def ws_url(server: Server, prefix: str = "") -> str:
    """The app's websocket URL, as bokeh's tests spell it."""
    return f"ws://localhost:{server.port}{prefix}/ws"
