"""Fuzz a real ``Connection`` over a real websocket with mutated server traffic.

For each generated script the fake server sends the mutated ACK part, waits for
the client's requests when that part really holds an ACK (it checks with its own
``ClientProtocol``), sends the mutated rest and closes. The client opens a
``Connection``, sends its requests, and closes. Every outcome must be a reply or
one of this package's typed errors; the connection must end closed on both sides,
with no task left running.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hostile_checks import other_tasks_after_settling
from hostile_fuzz import REQUESTS, Fragment, scripts
from hostile_server import ClientGone, FakeServer, Peer
from hypothesis import HealthCheck, event, given, settings

from bokeh_nb_client.connection import Connection
from bokeh_nb_client.exceptions import BokehClientError, RemoteProtocolError
from bokeh_nb_client.protocol import Acknowledged, ClientProtocol, WireMessage, counter_ids
from bokeh_nb_client.transport.websocket import AiohttpTransport

TIMEOUT = 2.0

FUZZ = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def client_will_speak(pre: list[Fragment]) -> bool:
    """True when ``pre`` delivers an ACK without a protocol error first."""
    protocol = ClientProtocol()
    try:
        for fragment in pre:
            if isinstance(protocol.receive_fragment(fragment), Acknowledged):
                return True
    except RemoteProtocolError:
        return False
    return False


def server_script(pre: list[Fragment], post: list[Fragment]) -> object:
    speaks = client_will_speak(pre)

    async def script(peer: Peer) -> None:
        await peer.send(pre)
        if speaks:
            with contextlib.suppress(ClientGone):
                for _ in REQUESTS:
                    await peer.next_message()
        await peer.send(post)
        await peer.close(1000, "script done")

    return script


async def run_client(url: str) -> list[WireMessage | BaseException]:
    patches: list[WireMessage] = []
    closed: list[BokehClientError] = []
    transport = await AiohttpTransport.open(
        url, token="fuzz", max_message_size=1 << 20, timeout=TIMEOUT
    )
    try:
        conn = await Connection.open(
            transport,
            on_patch=patches.append,
            on_closed=closed.append,
            ack_timeout=TIMEOUT,
            id_factory=counter_ids(),
        )
    except BokehClientError as exc:
        return [exc]
    outcomes: list[WireMessage | BaseException] = list(
        await asyncio.gather(
            *(conn.request(kind, {}, timeout=TIMEOUT) for kind in REQUESTS),
            return_exceptions=True,
        )
    )
    await conn.close()
    assert conn.closed
    assert len(closed) == 1, "on_closed must run exactly once"
    assert conn.failure is closed[0]
    return outcomes


@pytest.mark.usefixtures("frozen_heap")
@FUZZ
@given(scripts())
def test_real_connection_survives_hostile_traffic(
    server: FakeServer, script: tuple[list[Fragment], list[Fragment]]
) -> None:
    pre, post = script
    endpoint = server.endpoint(server_script(pre, post))  # type: ignore[arg-type]

    async def main() -> None:
        async with asyncio.timeout(4 * TIMEOUT):
            outcomes = await run_client(endpoint.ws_url)
        for outcome in outcomes:
            assert isinstance(outcome, WireMessage | BokehClientError), repr(outcome)
            event(type(outcome).__name__)
        left = await other_tasks_after_settling()
        assert not left, f"tasks still running: {left}"
        assert await endpoint.record.wait_gone_async(), "the server never saw the socket end"

    try:
        asyncio.run(main())
    finally:
        server.forget(endpoint)
    assert not endpoint.script_errors()
