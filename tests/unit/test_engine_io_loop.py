"""``engine.home_for`` (``io_loop=``) and ``engine.loop_serves`` (a server on the caller's loop)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bokeh_nb_client.engine import current_home, home_for, loop_serves, resolve_io_loop
from bokeh_nb_client.exceptions import SessionStateError


class FakeTornadoLoop:
    """What ``resolve_io_loop`` reads of a tornado IOLoop: its ``asyncio_loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.asyncio_loop = loop


def test_resolve_io_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert resolve_io_loop(None) is None
        assert resolve_io_loop(loop) is loop
        assert resolve_io_loop(FakeTornadoLoop(loop)) is loop
        with pytest.raises(TypeError, match="io_loop"):
            resolve_io_loop("io_loop")
    finally:
        loop.close()


def test_home_for_a_loop_that_is_not_running_runs_it_while_waiting() -> None:
    loop = asyncio.new_event_loop()
    try:
        home = home_for(loop)
        assert home.loop is loop
        assert home.owns_loop
        assert home_for(FakeTornadoLoop(loop)) is home  # one Home per loop and thread
        assert home_for(None) is current_home()
    finally:
        loop.close()
    with pytest.raises(ValueError, match="closed"):
        home_for(loop)


def test_home_for_a_loop_that_cannot_run_here_is_refused() -> None:
    other = asyncio.new_event_loop()

    async def main() -> None:
        with pytest.raises(SessionStateError, match="io_loop is not running"):
            home_for(other)
        # The running loop itself is simply this thread's home.
        assert home_for(asyncio.get_running_loop()) is current_home()

    try:
        asyncio.run(main())
    finally:
        other.close()


def test_loop_serves_sees_its_own_listening_sockets_only() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            assert loop_serves(loop, "127.0.0.1", port)
            assert loop_serves(loop, "localhost", port)
            assert not loop_serves(loop, "127.0.0.1", port + 1 if port < 65535 else port - 1)
            # A listening socket that is not the loop's does not count.
            with socket.socket() as unrelated:
                unrelated.bind(("127.0.0.1", 0))
                unrelated.listen()
                assert not loop_serves(loop, "127.0.0.1", unrelated.getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()
        other = asyncio.new_event_loop()
        try:
            assert not loop_serves(other, "127.0.0.1", port)
        finally:
            other.close()

    asyncio.run(main())
