"""The floor: the least a websocket client must do for each exchange, on raw aiohttp.

No document, no protocol state machine, no validation: mint an unsigned token,
open the websocket with the two subprotocols ``("bokeh", token)``, set
``TCP_NODELAY``, wait for the ACK, write the three text frames of a request and
read frames until the reply with the matching ``reqid`` has arrived. A message is
read as header, metadata and content text frames plus ``num_buffers`` pairs of a
buffer-id text frame and a binary frame. Only the header is parsed on the way;
what a case needs of the content is parsed by that case.

``TCP_QUICKACK``: with ``TCP_NODELAY`` alone a request/reply takes about 44 ms on
loopback, because the server writes a reply as three small segments (it does not
set ``TCP_NODELAY``): the second one waits in the server's Nagle buffer for our
ACK of the first, which Linux delays by up to 40 ms. A floor must not pay a stall
that any client can avoid, so by default it re-arms ``TCP_QUICKACK`` after every
frame it reads, as ``bokeh_nb_client`` does. ``quickack=False`` gives the
NODELAY-only variant, which ``run.py`` reports alongside for case 1.

Whatever ``bokeh_nb_client`` spends beyond this is its own overhead.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from bokeh.core.types import ID
from bokeh.util.token import generate_jwt_token, generate_session_id

_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

__all__ = [
    "RawMessage",
    "RawSession",
    "array_stream_patch",
    "column",
    "find_root",
    "stream_patch",
]


@dataclass(slots=True)
class RawMessage:
    """One received Bokeh message, with its metadata and content left as text."""

    header: dict[str, Any]
    metadata: str
    content: str
    buffers: list[bytes] = field(default_factory=list)


class RawSession:
    """A Bokeh websocket opened with nothing but aiohttp. Create with :meth:`open`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        session_id: str,
        quickack: bool,
    ) -> None:
        self.session_id = session_id
        self._http = http
        self._ws = ws
        self._ids = itertools.count(1)
        sock = ws.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock: socket.socket | None = sock if quickack and _TCP_QUICKACK is not None else None
        self._rearm()

    @classmethod
    async def open(
        cls, ws_url: str, session_id: str | None = None, *, quickack: bool = True
    ) -> Self:
        """Connect to ``ws_url`` (``ws://host:port/app/ws``) and wait for the ACK."""
        sid = ID(session_id or generate_session_id(secret_key=None, signed=False))
        token = generate_jwt_token(sid, secret_key=None, signed=False, expiration=300)
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(ws_url, protocols=("bokeh", token), max_msg_size=0)
            raw = cls(http, ws, sid, quickack)
            ack = await raw.receive()
            if ack.header.get("msgtype") != "ACK":
                raise RuntimeError(f"expected ACK, got {ack.header}")
        except BaseException:
            await http.close()
            raise
        return raw

    def _rearm(self) -> None:
        if self._sock is not None and _TCP_QUICKACK is not None:
            self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    async def _text(self) -> str:
        text = await self._ws.receive_str()
        self._rearm()
        return text

    async def receive(self) -> RawMessage:
        """Read the frames of the next message."""
        header: dict[str, Any] = json.loads(await self._text())
        metadata = await self._text()
        content = await self._text()
        buffers: list[bytes] = []
        for _ in range(header.get("num_buffers", 0)):
            await self._text()  # the buffer's {"id": ...}
            buffers.append(await self._ws.receive_bytes())
            self._rearm()
        return RawMessage(header, metadata, content, buffers)

    async def send(self, msgtype: str, content: str = "{}") -> str:
        """Write the three text frames of one message; return its msgid."""
        msgid = str(next(self._ids))
        ws = self._ws
        await ws.send_str(f'{{"msgid":"{msgid}","msgtype":"{msgtype}"}}')
        await ws.send_str("{}")
        await ws.send_str(content)
        return msgid

    async def send_with_buffers(
        self, msgtype: str, content: str, buffers: list[tuple[str, bytes]]
    ) -> str:
        """Write one message with binary buffers (three text frames, then id/bytes pairs)."""
        msgid = str(next(self._ids))
        ws = self._ws
        await ws.send_str(
            f'{{"msgid":"{msgid}","msgtype":"{msgtype}","num_buffers":{len(buffers)}}}'
        )
        await ws.send_str("{}")
        await ws.send_str(content)
        for buffer_id, payload in buffers:
            await ws.send_str(f'{{"id":"{buffer_id}"}}')
            await ws.send_bytes(payload)
        return msgid

    async def wait_reply(self, msgid: str) -> RawMessage:
        """Read messages until the reply to ``msgid`` (others, e.g. OKs, are skipped)."""
        while True:
            message = await self.receive()
            if message.header.get("reqid") == msgid:
                return message

    async def request(self, msgtype: str, content: str = "{}") -> RawMessage:
        """Send one request and return its reply."""
        return await self.wait_reply(await self.send(msgtype, content))

    async def close(self) -> None:
        """Close the websocket (with the close handshake) and the HTTP session."""
        try:
            await self._ws.close()
        finally:
            await self._http.close()


def find_root(pull_reply: RawMessage, name: str) -> dict[str, Any]:
    """The root model called ``name`` in a PULL-DOC-REPLY, as its JSON object."""
    doc = json.loads(pull_reply.content)["doc"]
    for root in doc["roots"]:
        if root.get("attributes", {}).get("name") == name:
            found: dict[str, Any] = root
            return found
    raise KeyError(f"no root named {name!r} in the pulled document")


def column(root: dict[str, Any], key: str) -> list[Any]:
    """A plain-list column of a ColumnDataSource root from a PULL-DOC-REPLY."""
    entries = root["attributes"]["data"]["entries"]
    for entry_key, value in entries:
        if entry_key == key:
            values: list[Any] = value
            return values
    raise KeyError(key)


def array_stream_patch(
    model_id: str, columns: dict[str, Any], rollover: int | None, prefix: str
) -> tuple[str, list[tuple[str, bytes]]]:
    """PATCH-DOC content streaming numpy ``columns`` as binary buffers, and those buffers.

    The same layout bokeh's serializer produces for ``source.stream({...: ndarray})``.
    """
    entries = []
    buffers: list[tuple[str, bytes]] = []
    for key, array in columns.items():
        buffer_id = f"{prefix}{len(buffers)}"
        buffers.append((buffer_id, array.tobytes()))
        entries.append(
            [
                key,
                {
                    "type": "ndarray",
                    "array": {"type": "bytes", "data": {"id": buffer_id}},
                    "shape": list(array.shape),
                    "dtype": str(array.dtype),
                    "order": sys.byteorder,
                },
            ]
        )
    event = {
        "kind": "ColumnsStreamed",
        "model": {"id": model_id},
        "attr": "data",
        "data": {"type": "map", "entries": entries},
        "rollover": rollover,
    }
    return json.dumps({"events": [event]}, separators=(",", ":")), buffers


def stream_patch(model_id: str, xs: list[int], ys: list[int]) -> str:
    """PATCH-DOC content with one ColumnsStreamed event (bokeh's own JSON layout)."""
    event = {
        "kind": "ColumnsStreamed",
        "model": {"id": model_id},
        "attr": "data",
        "data": {"type": "map", "entries": [["x", xs], ["y", ys]]},
        "rollover": None,
    }
    return json.dumps({"events": [event]}, separators=(",", ":"))
