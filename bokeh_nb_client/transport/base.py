"""The Transport seam: what ``Connection`` needs from a websocket."""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import Mapping, Sequence
from typing import Protocol

from ..exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from ..protocol.wire import Fragment

__all__ = ["Transport", "TransportFactory", "closed_error"]


class Transport(Protocol):
    """A message-oriented, ordered, two-way channel of text and binary messages.

    Implementations raise this package's exceptions only: ``ConnectionClosed`` from
    ``send``/``receive`` once closed, ``MessageTooBig`` for oversized messages.
    """

    bytes_in: int
    bytes_out: int

    @property
    def url(self) -> str:
        """Where this transport is connected (for messages and status)."""
        ...

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None:
        """Write the fragments of one message, in order, without interleaving."""
        ...

    async def receive(self) -> Fragment:
        """Return the next fragment; raise ``ConnectionClosed`` at the end.

        Text is a ``str``; binary is ``bytes`` or a ``memoryview`` that the
        transport hands over (it keeps no reference; arrays may view it).
        """
        ...

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        """Close the channel; idempotent."""
        ...


class TransportFactory(Protocol):
    """The seam through which a session opens its transport.

    ``AiohttpTransport.open`` in production; tests pass a factory that returns an
    in-memory transport (``AsyncClientSession(transport_factory=...)``), as httpx
    takes ``transport=``. Must raise this package's connect errors only.
    """

    async def __call__(
        self,
        url: str,
        *,
        token: str,
        max_message_size: int,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        ssl: ssl_module.SSLContext | bool | None = None,
    ) -> Transport:
        """Open a transport to ``url`` with the Bokeh subprotocols and ``token``."""
        ...


_NORMAL_CLOSE_CODES = frozenset({1000, 1001})

_CLOSE_CODE_MEANINGS = {
    1006: "the connection dropped without a close frame (server killed or network cut)",
    1009: "a message was larger than the server's --websocket-max-message-size",
    10000: "the server failed to parse a message",
    10001: "the server detected a protocol error",
}


def closed_error(code: int, reason: str) -> ConnectionClosed:
    """Build the ConnectionClosed subclass that fits a close ``code`` and ``reason``."""
    meaning = _CLOSE_CODE_MEANINGS.get(code)
    text = f"connection closed (code {code}"
    text += f", reason {reason!r})" if reason else ")"
    if meaning:
        text += f": {meaning}"
    cls = ConnectionClosedOK if code in _NORMAL_CLOSE_CODES else ConnectionClosedError
    return cls(text, code=code, reason=reason)
