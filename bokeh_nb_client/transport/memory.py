"""An in-memory Transport pair: a websocket without a socket, for tests and demos.

:func:`memory_pair` returns a :class:`MemoryTransport` (the client end, which
``Connection`` drives exactly as it drives ``AiohttpTransport``) and a
:class:`MemoryPeer` (the other end, which a test script uses to act as the
server: send fragments, read what the client sent, close with a code and
reason, or drop the link without a close frame).

Semantics, chosen to match ``AiohttpTransport`` (the transport contract suite in
``tests/contract`` runs against both):

* Each direction is an ordered FIFO of whole websocket messages ("fragments"):
  ``str`` is a text frame, ``bytes`` a binary frame. A ``memoryview`` or
  ``bytearray`` handed to ``send`` is copied at once, so the caller may reuse
  its buffer.
* A fragment larger than ``max_message_size`` (when non-zero) is refused by
  ``send`` with ``MessageTooBig`` before anything of the message is sent; one
  arriving at ``receive`` raises ``MessageTooBig`` and closes the link with code
  1009, as aiohttp does.
* ``close(code, reason)`` is idempotent. The closing end's own pending and later
  ``receive``/``send`` calls raise ``ConnectionClosed`` built by
  :func:`~bokeh_nb_client.transport.websocket.closed_error` from that code and
  reason. The other end first receives every fragment sent before the close, then
  ``ConnectionClosed`` with the same code and reason. ``MemoryPeer.drop`` ends the
  link without a close frame: the client sees code 1006.
* Fragments sent to an end that has already closed are discarded, as on a real
  socket; a send never blocks on an end that will not read again.
* With ``buffer_limit`` set, a direction holds at most that many unread
  fragments and ``send`` waits for the reader (backpressure, like a full socket
  buffer); without it, ``send`` never suspends.

Everything runs on one event loop; the objects are not thread-safe. Only the
standard library (asyncio) is used besides this package.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence

from ..exceptions import MessageTooBig
from ..protocol.wire import Fragment
from .base import closed_error

__all__ = ["MemoryPeer", "MemoryTransport", "memory_pair"]

_Close = tuple[int, str]

_ABNORMAL = 1006
_TOO_BIG = 1009


class _Pipe:
    """One direction of the pair: unread fragments, then the writer's close."""

    __slots__ = ("end", "items", "reader_gone", "waiters")

    def __init__(self) -> None:
        self.items: collections.deque[Fragment] = collections.deque()
        self.end: _Close | None = None  # the writing end closed (or dropped) with this
        self.reader_gone = False  # the reading end closed: writes are discarded
        self.waiters: list[asyncio.Future[None]] = []

    async def changed(self) -> None:
        """Wait until :meth:`notify` is called."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        finally:
            if future in self.waiters:
                self.waiters.remove(future)

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


class _End:
    """What both ends share: send, receive, close."""

    def __init__(
        self,
        url: str,
        incoming: _Pipe,
        outgoing: _Pipe,
        *,
        max_message_size: int,
        buffer_limit: int | None,
    ) -> None:
        self._url = url
        self._incoming = incoming
        self._outgoing = outgoing
        self._max_message_size = max_message_size
        self._buffer_limit = buffer_limit
        self._closed: _Close | None = None
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def url(self) -> str:
        """The URL this pair pretends to be connected to."""
        return self._url

    @property
    def close_code(self) -> int | None:
        """The close code once this end knows it is closed, else None."""
        return None if self._closed is None else self._closed[0]

    @property
    def close_reason(self) -> str | None:
        """The close reason once this end knows it is closed, else None."""
        return None if self._closed is None else self._closed[1]

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None:
        """Write the fragments of one message, in order.

        Raises:
            MessageTooBig: a fragment exceeds ``max_message_size`` (nothing is sent).
            ConnectionClosed: this end is closed.
        """
        self._raise_if_closed()
        copies: list[Fragment] = [
            fragment if isinstance(fragment, str | bytes) else bytes(fragment)
            for fragment in fragments
        ]
        limit = self._max_message_size
        if limit:
            for fragment in copies:
                if len(fragment) > limit:
                    raise MessageTooBig(
                        f"a message fragment of {len(fragment)} bytes exceeds "
                        f"max_message_size={limit}",
                        limit=limit,
                        size=len(fragment),
                    )
        pipe = self._outgoing
        for fragment in copies:
            while (
                self._buffer_limit is not None
                and len(pipe.items) >= self._buffer_limit
                and not pipe.reader_gone
            ):
                await pipe.changed()
                self._raise_if_closed()
            self._raise_if_closed()
            if not pipe.reader_gone:
                pipe.items.append(fragment)
                pipe.notify()
            self.bytes_out += len(fragment)

    async def receive(self) -> Fragment:
        """Return the next fragment.

        Raises:
            ConnectionClosed: this end closed, or the other end closed and every
                fragment sent before that has been received.
            MessageTooBig: the fragment exceeds ``max_message_size``; the link is
                then closed with code 1009.
        """
        pipe = self._incoming
        while True:
            self._raise_if_closed()
            if pipe.items:
                fragment = pipe.items.popleft()
                pipe.notify()  # room for a sender waiting on buffer_limit
                limit = self._max_message_size
                if limit and len(fragment) > limit:
                    self._shut((_TOO_BIG, "message too big"), seen_by_peer=(_TOO_BIG, ""))
                    raise MessageTooBig(
                        f"received a message of {len(fragment)} bytes, larger than "
                        f"max_message_size={limit}",
                        limit=limit,
                        size=len(fragment),
                    )
                self.bytes_in += len(fragment)
                return fragment
            if pipe.end is not None:
                self._shut(pipe.end, seen_by_peer=None)
                self._raise_if_closed()
            await pipe.changed()

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        """Close this end with ``code`` and ``reason``; idempotent."""
        self._shut((code, reason), seen_by_peer=(code, reason))

    def _raise_if_closed(self) -> None:
        if self._closed is not None:
            raise closed_error(*self._closed)

    def _shut(self, own: _Close, *, seen_by_peer: _Close | None) -> None:
        """Record the close; tell the other end (unless it closed first)."""
        if self._closed is not None:
            return
        self._closed = own
        if seen_by_peer is not None and self._outgoing.end is None:
            self._outgoing.end = seen_by_peer
        self._incoming.reader_gone = True
        self._incoming.items.clear()
        self._incoming.notify()
        self._outgoing.notify()


class MemoryTransport(_End):
    """The client end of a :func:`memory_pair`; implements ``Transport``."""

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._url} closed={self._closed}>"


class MemoryPeer(_End):
    """The server end of a :func:`memory_pair`, driven by a test script.

    It has the same ``send``/``receive``/``close`` as the transport, plus
    :meth:`drop`, and :meth:`unread` to inspect what the client sent without
    consuming it.
    """

    async def drop(self) -> None:
        """End the link without a close frame: the client sees code 1006."""
        self._shut((_ABNORMAL, ""), seen_by_peer=(_ABNORMAL, ""))

    def unread(self) -> list[Fragment]:
        """Fragments the client sent that this end has not received yet."""
        return list(self._incoming.items)

    def __repr__(self) -> str:
        return f"<MemoryPeer {self._url} closed={self._closed}>"


def memory_pair(
    url: str = "memory://test",
    *,
    max_message_size: int = 0,
    peer_max_message_size: int = 0,
    buffer_limit: int | None = None,
) -> tuple[MemoryTransport, MemoryPeer]:
    """Create a connected (client transport, server peer) pair.

    Args:
        url: reported by both ends' ``url`` (used in error messages and status).
        max_message_size: the largest fragment the client transport sends or
            accepts, in bytes (characters for text); 0 for no limit.
        peer_max_message_size: the same limit for the peer (the server's
            ``--websocket-max-message-size``); 0 for no limit.
        buffer_limit: the most unread fragments a direction holds before ``send``
            waits for the reader; None for no limit.

    Raises:
        ValueError: a size limit is negative or ``buffer_limit`` is below 1.
    """
    for name, limit in (
        ("max_message_size", max_message_size),
        ("peer_max_message_size", peer_max_message_size),
    ):
        if limit < 0:
            raise ValueError(f"{name} must be >= 0, got {limit!r}")
    if buffer_limit is not None and buffer_limit < 1:
        raise ValueError(f"buffer_limit must be None or >= 1, got {buffer_limit!r}")
    to_client = _Pipe()
    to_server = _Pipe()
    transport = MemoryTransport(
        url, to_client, to_server, max_message_size=max_message_size, buffer_limit=buffer_limit
    )
    peer = MemoryPeer(
        url,
        to_server,
        to_client,
        max_message_size=peer_max_message_size,
        buffer_limit=buffer_limit,
    )
    return transport, peer
