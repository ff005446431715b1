"""The sans-I/O core of the Bokeh websocket protocol (PROTOCOL.md §2, §3, §5).

Synchronous and free of I/O: it turns messages into websocket fragments and back
(:mod:`.wire`), names the message types (:mod:`.messages`), tracks the connection
state and pairs replies with requests (:mod:`.machine`, emitting :mod:`.events`),
and maps server URLs (:mod:`.urls`).

Invariant: this package imports only the standard library and
``bokeh_nb_client.exceptions``; never asyncio, aiohttp or bokeh. That keeps it
testable with plain values and recorded transcripts.
"""

from __future__ import annotations

from .events import (
    Acknowledged,
    ConnectionTerminated,
    ErrorReplyReceived,
    Event,
    PatchReceived,
    ReplyReceived,
)
from .machine import ClientProtocol, State
from .messages import (
    CLIENT_REQUESTS,
    REPLY_TYPE,
    ErrorContent,
    IdFactory,
    MsgType,
    ServerInfo,
    VersionInfo,
    counter_ids,
    make_header,
)
from .wire import (
    MAX_BUFFERS,
    Assembler,
    AssemblerState,
    Fragment,
    JsonText,
    OutFragment,
    WireMessage,
    encode,
)

__all__ = [
    "CLIENT_REQUESTS",
    "MAX_BUFFERS",
    "REPLY_TYPE",
    "Acknowledged",
    "Assembler",
    "AssemblerState",
    "ClientProtocol",
    "ConnectionTerminated",
    "ErrorContent",
    "ErrorReplyReceived",
    "Event",
    "Fragment",
    "IdFactory",
    "JsonText",
    "MsgType",
    "OutFragment",
    "PatchReceived",
    "ReplyReceived",
    "ServerInfo",
    "State",
    "VersionInfo",
    "WireMessage",
    "counter_ids",
    "encode",
    "make_header",
]
