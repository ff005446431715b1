"""Arrays reach a real ``bokeh serve`` as binary buffers only, on every supported bokeh.

Before bokeh 3.9 bokeh's own JSON encoder, built without its ``buffers=`` list,
also writes every array into the text part as base64: 2.33x the bytes, and for
2M float64 rows a text part over the server's 20 MiB message limit, so the
change never arrived. And before 3.9 the server's PUSH-DOC handler ignores
binary buffers, so a pushed document's arrays follow in a PATCH-DOC (issue 10).

What the client sends is recorded through the session's transport seam
(``transport_factory=``): a factory that opens the real websocket and wraps it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh_server import BokehServer

from bokeh_nb_client import pull_session, push_session
from bokeh_nb_client.protocol.wire import Fragment
from bokeh_nb_client.transport.base import Transport
from bokeh_nb_client.transport.websocket import AiohttpTransport

pytestmark = pytest.mark.interop

ROWS = 2_000_000
BIG = 100_000_000  # a limit for the observers' pulls, whose replies carry the rows
SMALL_TEXT = 10_000  # characters: a content that carries no array as text


@dataclass(frozen=True)
class Sent:
    """The sizes of one message the client wrote to the socket."""

    msgtype: str
    content_chars: int
    buffer_sizes: list[int]


class RecordingTransport:
    """A transport that notes the sizes of each message it sends, then sends it."""

    def __init__(self, inner: Transport, recorded: list[Sent]) -> None:
        self._inner = inner
        self._recorded = recorded

    @property
    def bytes_in(self) -> int:
        return self._inner.bytes_in

    @property
    def bytes_out(self) -> int:
        return self._inner.bytes_out

    @property
    def url(self) -> str:
        return self._inner.url

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None:
        header = json.loads(str(fragments[0]))
        self._recorded.append(
            Sent(
                header["msgtype"],
                len(fragments[2]),
                [len(payload) for payload in fragments[4::2]],
            )
        )
        await self._inner.send(fragments)

    async def receive(self) -> Fragment:
        return await self._inner.receive()

    async def close(self, code: int = 1000, reason: str = "closed") -> None:
        await self._inner.close(code, reason)


class Recorder:
    """A ``transport_factory`` that opens the real websocket and records what is sent."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def __call__(self, url: str, **kwargs: Any) -> Transport:
        return RecordingTransport(await AiohttpTransport.open(url, **kwargs), self.sent)


def _columns() -> dict[str, np.ndarray]:
    return {
        "x": np.arange(ROWS, dtype="float64"),
        "y": np.random.default_rng(1).random(ROWS),
    }


def _assert_server_holds(server: BokehServer, app: str, session_id: str, name: str) -> None:
    expected = _columns()
    url = server.http_url(app)
    with pull_session(session_id=session_id, url=url, max_message_size=BIG) as observer:
        assert observer.document is not None
        data = observer.document.select_one({"name": name}).data
        for column, values in expected.items():
            assert np.array_equal(np.asarray(data[column]), values), column


def test_two_million_row_change_travels_as_binary_buffers_only(
    bokeh_server: BokehServer,
) -> None:
    recorder = Recorder()
    sent = recorder.sent
    url = bokeh_server.http_url("sink")
    with pull_session(url=url, transport_factory=recorder) as session:
        assert session.document is not None
        source = session.document.select_one({"name": "sink"})
        sent.clear()
        source.data = _columns()
        session.force_roundtrip()
        patches = [message for message in sent if message.msgtype == "PATCH-DOC"]
        assert len(patches) == 1, sent
        assert patches[0].content_chars < SMALL_TEXT
        assert sorted(patches[0].buffer_sizes) == [ROWS * 8, ROWS * 8]
        assert session.status.last_error is None
        _assert_server_holds(bokeh_server, "sink", session.id, "sink")


def test_two_million_row_push_travels_as_binary_buffers_only(
    bokeh_server: BokehServer,
) -> None:
    recorder = Recorder()
    sent = recorder.sent
    doc = Document()
    doc.add_root(ColumnDataSource(name="big", data=_columns()))
    url = bokeh_server.http_url("empty")
    with push_session(doc, url=url, transport_factory=recorder) as session:
        documents = [m for m in sent if m.msgtype in ("PUSH-DOC", "PATCH-DOC")]
        assert documents[0].msgtype == "PUSH-DOC"
        assert all(m.content_chars < SMALL_TEXT for m in documents), documents
        assert sorted(size for m in documents for size in m.buffer_sizes) == [ROWS * 8] * 2
        _assert_server_holds(bokeh_server, "empty", session.id, "big")
