"""Bokeh message types, the shapes of their small contents, and header builders.

The nine msgtypes and who sends which are listed in PROTOCOL.md §3. Content is
treated as opaque JSON here: what a document JSON or a PATCH-DOC event means
belongs to the layer that imports bokeh. Only contents the protocol core itself
reads (ERROR, SERVER-INFO-REPLY) have TypedDict shapes.

Message ids come from an injectable :data:`IdFactory`, so that tests and recorded
transcripts are deterministic without patching anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeAlias, TypedDict

__all__ = [
    "CLIENT_REQUESTS",
    "REPLY_TYPE",
    "ErrorContent",
    "IdFactory",
    "MsgType",
    "ServerInfo",
    "VersionInfo",
    "counter_ids",
    "make_header",
]


class MsgType(StrEnum):
    """The ``msgtype`` header values of the Bokeh protocol (2.x and 3.x)."""

    ACK = "ACK"
    OK = "OK"
    ERROR = "ERROR"
    PATCH_DOC = "PATCH-DOC"
    PULL_DOC_REQ = "PULL-DOC-REQ"
    PULL_DOC_REPLY = "PULL-DOC-REPLY"
    PUSH_DOC = "PUSH-DOC"
    SERVER_INFO_REQ = "SERVER-INFO-REQ"
    SERVER_INFO_REPLY = "SERVER-INFO-REPLY"


CLIENT_REQUESTS: frozenset[MsgType] = frozenset(
    {MsgType.PULL_DOC_REQ, MsgType.PUSH_DOC, MsgType.PATCH_DOC, MsgType.SERVER_INFO_REQ}
)
"""The messages a client may send; the server answers each one exactly once."""

REPLY_TYPE: Mapping[MsgType, MsgType] = MappingProxyType(
    {
        MsgType.PULL_DOC_REQ: MsgType.PULL_DOC_REPLY,
        MsgType.PUSH_DOC: MsgType.OK,
        MsgType.PATCH_DOC: MsgType.OK,
        MsgType.SERVER_INFO_REQ: MsgType.SERVER_INFO_REPLY,
    }
)
"""The successful reply to each client request. ERROR may answer any of them."""


class VersionInfo(TypedDict):
    """The ``version_info`` of a SERVER-INFO-REPLY: both hold the server's bokeh
    version."""

    bokeh: str
    server: str


class ServerInfo(TypedDict):
    """The content of a SERVER-INFO-REPLY."""

    version_info: VersionInfo


class ErrorContent(TypedDict):
    """The content of an ERROR reply: ``text`` is the server's ``repr`` of its
    exception, ``traceback`` the server-side traceback or None."""

    text: str
    traceback: str | None


IdFactory: TypeAlias = Callable[[], str]
"""Returns a fresh message id on every call. Ids must be unique per connection."""


def counter_ids(prefix: str = "c") -> IdFactory:
    """Return an id factory producing ``f"{prefix}1"``, ``f"{prefix}2"``, ...

    Each factory has its own counter. Calls may come from several threads: the
    counter is an ``itertools.count``, whose ``next`` is atomic in CPython.

    Args:
        prefix: put before the number. The default ``"c"`` cannot collide with the
            ids bokeh's server gives its own messages (``"p1017"``-style or UUIDs),
            although ids only need to be unique per sender.
    """
    numbers = itertools.count(1)

    def next_id() -> str:
        return f"{prefix}{next(numbers)}"

    return next_id


def make_header(msgtype: MsgType, msgid: str, reqid: str | None = None) -> dict[str, Any]:
    """Build a message header.

    Args:
        msgtype: the message type.
        msgid: this message's id, unique per connection.
        reqid: for a reply, the msgid of the request it answers; omitted when None.

    Returns:
        A new dict ``{"msgid": ..., "msgtype": ...}`` plus ``"reqid"`` if given.
        ``num_buffers`` is added by :func:`~bokeh_nb_client.protocol.wire.encode`.
    """
    header: dict[str, Any] = {"msgid": msgid, "msgtype": MsgType(msgtype).value}
    if reqid is not None:
        header["reqid"] = reqid
    return header
