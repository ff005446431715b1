"""The events :class:`~bokeh_nb_client.protocol.machine.ClientProtocol` emits.

Each is an immutable value describing one thing the server did. They are returned
by ``receive_fragment`` (the :data:`Event` union) and ``receive_close``
(:class:`ConnectionTerminated`); dispatch on them with ``match``. None of them
carries I/O or callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .messages import MsgType
from .wire import WireMessage

__all__ = [
    "Acknowledged",
    "ConnectionTerminated",
    "ErrorReplyReceived",
    "Event",
    "PatchReceived",
    "ReplyReceived",
]


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The server sent its ACK: the session exists and requests may now be sent."""

    message: WireMessage


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The expected reply to one of our requests arrived.

    Attributes:
        reqid: the msgid of the request, as returned by ``send_request``.
        request_type: the request's msgtype.
        message: the reply (``OK``, ``PULL-DOC-REPLY`` or ``SERVER-INFO-REPLY``).
    """

    reqid: str
    request_type: MsgType
    message: WireMessage


@dataclass(frozen=True, slots=True)
class ErrorReplyReceived:
    """The server answered one of our requests with ERROR. The connection stays open.

    Attributes:
        reqid: the msgid of the failed request.
        request_type: the failed request's msgtype.
        text: the server's ``repr`` of its exception.
        traceback: the server-side traceback, or None.
    """

    reqid: str
    request_type: MsgType
    text: str
    traceback: str | None


@dataclass(frozen=True, slots=True)
class PatchReceived:
    """The server sent a PATCH-DOC of its own (not a reply): apply it to the document."""

    message: WireMessage


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """The websocket closed.

    Attributes:
        code: the close code (1006 when the socket dropped without a close frame).
        reason: the close reason, possibly empty.
        pending: msgids of the requests that were still unanswered, in the order
            they were sent; each must fail with ``ConnectionClosed``.
    """

    code: int
    reason: str
    pending: tuple[str, ...]


Event: TypeAlias = Acknowledged | ReplyReceived | ErrorReplyReceived | PatchReceived
"""What ``ClientProtocol.receive_fragment`` returns for a complete message."""
