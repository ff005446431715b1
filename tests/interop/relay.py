"""A TCP relay on 127.0.0.1 that a test can cut, blackhole and restore.

It stands between the client and a real ``bokeh serve`` to simulate network
faults: ``cut()`` resets every relayed connection and refuses new ones (a dropped
network), ``blackhole()`` keeps connections open but silently discards all data
both ways (a frozen link), ``restore()`` goes back to relaying (connections that
lived through a blackhole are reset then, since bytes were lost in them).
It runs its own asyncio loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["relay", "cut", "blackhole"]


class TcpRelay:
    """Listen on 127.0.0.1:<port> and forward to 127.0.0.1:<target_port>."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._mode: Mode = "relay"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._started = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="tcp-relay", daemon=True)
        self._thread.start()
        self._started.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, sock=self._listener)
        )
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "cut":
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(writer)
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(
                self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self._mode == "relay":
                writer.write(data)
                await writer.drain()
        writer.close()

    def _call(self, mode: Mode) -> None:
        async def apply() -> None:
            previous, self._mode = self._mode, mode
            if mode == "cut" or (mode == "relay" and previous == "blackhole"):
                for writer in list(self._writers):
                    _reset(writer)

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(5)

    def cut(self) -> None:
        """Reset every relayed connection and refuse new ones."""
        self._call("cut")

    def blackhole(self) -> None:
        """Keep connections open but drop every byte, both ways."""
        self._call("blackhole")

    def restore(self) -> None:
        """Relay again (connections that lost bytes in a blackhole are reset)."""
        self._call("relay")

    def close(self) -> None:
        """Stop the relay and its thread."""

        async def shutdown() -> None:
            self._server.close()
            for writer in list(self._writers):
                _reset(writer)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with a TCP reset (SO_LINGER 0), like a dropped network."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()
