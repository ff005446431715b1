"""The Transport seam: what ``Connection`` needs from a websocket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..protocol.wire import Fragment

__all__ = ["Transport"]


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
        """Return the next fragment; raise ``ConnectionClosed`` at the end."""
        ...

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        """Close the channel; idempotent."""
        ...
