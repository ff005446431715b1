"""Malformed framing from the server, through the synchronous public API.

Every case is sent twice: as the reply to a ``pull()`` in flight (the blocking call
must raise at once), and unsolicited after a successful pull (the next call must
raise the failure that closed the connection). Either way the error is a
``RemoteProtocolError``, the client closes the websocket with 1002 and the fake
server sees it go, nothing of the bad message reaches the document, and every
later call raises the same error instead of hanging.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from hostile_checks import stopwatch
from hostile_server import (
    FakeServer,
    Peer,
    ack_frames,
    message_frames,
    patch_frames,
    pull_reply_frames,
)

from bokeh_nb_client import ClientSession, SessionState
from bokeh_nb_client.exceptions import RemoteProtocolError
from bokeh_nb_client.protocol import MsgType, OutFragment

FAST = 1.5
"""A protocol error must surface well inside the session timeout (2 s)."""

Frames = list[str | bytes]


def _plain(frames: list[OutFragment]) -> Frames:
    return [f if isinstance(f, str) else bytes(f) for f in frames]


def column_patch(doc: Document) -> Frames:
    """A valid server PATCH-DOC replacing column ``x`` of ``src`` from one buffer."""
    src = doc.select_one({"name": "src"})
    assert isinstance(src, ColumnDataSource)
    array = {
        "type": "ndarray",
        "array": {"type": "bytes", "data": {"id": "b1"}},
        "shape": [4],
        "dtype": "float64",
        "order": "little",
    }
    event = {
        "kind": "ColumnDataChanged",
        "model": {"id": src.id},
        "attr": "data",
        "data": {"type": "map", "entries": [["x", array]]},
        "cols": ["x"],
    }
    payload = np.array([9.0, 9.0, 9.0, 9.0]).tobytes()
    return _plain(patch_frames([event], [("b1", payload)]))


def base_frames(reply_to: str | None, doc: Document) -> Frames:
    """The valid message a case corrupts: the PULL-DOC-REPLY to ``reply_to``, or an
    unsolicited PATCH-DOC. Both are header, metadata, content, buffer header, payload."""
    if reply_to is None:
        return column_patch(doc)
    return _plain(pull_reply_frames(doc, reply_to))


def _header(frames: Frames) -> dict[str, Any]:
    header = frames[0]
    assert isinstance(header, str)
    parsed: dict[str, Any] = json.loads(header)
    return parsed


def with_header(change: Callable[[dict[str, Any]], Any]) -> Callable[[Frames], Frames]:
    def mutate(frames: Frames) -> Frames:
        header = _header(frames)
        replaced = change(header)
        frames[0] = json.dumps(header if replaced is None else replaced)
        return frames

    return mutate


def at(index: int, value: Callable[[str | bytes], str | bytes]) -> Callable[[Frames], Frames]:
    def mutate(frames: Frames) -> Frames:
        frames[index] = value(frames[index])
        return frames

    return mutate


def to_binary(fragment: str | bytes) -> bytes:
    assert isinstance(fragment, str)
    return fragment.encode()


def to_text(fragment: str | bytes) -> str:
    assert isinstance(fragment, bytes)
    return fragment.decode("latin-1")


def const(text: str) -> Callable[[str | bytes], str]:
    return lambda _: text


def _pop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda header: header.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda header: header.__setitem__(key, value)


DEEP = "[" * 100_000 + "]" * 100_000


@dataclass(frozen=True)
class Case:
    """One corruption: ``build(reply_to, doc)`` returns the frames the server sends."""

    name: str
    build: Callable[[str | None, Document], Frames]
    reply_only: bool = False


def corrupt(name: str, mutate: Callable[[Frames], Frames]) -> Case:
    return Case(name, lambda reply_to, doc: mutate(base_frames(reply_to, doc)))


def _surplus_buffer(reply_to: str | None, doc: Document) -> Frames:
    # A complete message without buffers, then a buffer pair nobody announced.
    leading = _plain(patch_frames([]))
    return [*leading, '{"id":"surplus"}', b"\x00" * 8, *base_frames(reply_to, doc)]


def _too_few_buffers(reply_to: str | None, doc: Document) -> Frames:
    frames = base_frames(reply_to, doc)
    header = _header(frames)
    header["num_buffers"] = 2
    frames[0] = json.dumps(header)
    # One buffer pair arrives, then the next message starts.
    return [*frames, *_plain(patch_frames([]))]


def _msgtype(kind: str, *, keep_reqid: bool = True) -> Callable[[str | None, Document], Frames]:
    def build(reply_to: str | None, doc: Document) -> Frames:
        frames = base_frames(reply_to, doc)
        header = _header(frames)
        header["msgtype"] = kind
        if not keep_reqid:
            header.pop("reqid", None)
        frames[0] = json.dumps(header)
        return frames

    return build


CASES = [
    corrupt("binary header", at(0, to_binary)),
    corrupt("binary metadata", at(1, to_binary)),
    corrupt("binary content", at(2, to_binary)),
    corrupt("binary buffer header", at(3, to_binary)),
    corrupt("text buffer payload", at(4, to_text)),
    corrupt("header not JSON", at(0, const('{"msgid": "s1", "msgtype": "PATCH-DOC"'))),
    corrupt("metadata not JSON", at(1, const("{,}"))),
    corrupt("content not JSON", at(2, lambda c: str(c)[:-3])),
    corrupt("buffer header not JSON", at(3, const('{"id": '))),
    corrupt("content with NaN", at(2, const('{"events": [], "x": NaN}'))),
    corrupt("header is an array", at(0, const('["msgid", "msgtype"]'))),
    corrupt("header without msgtype", with_header(_pop("msgtype"))),
    corrupt("header without msgid", with_header(_pop("msgid"))),
    corrupt("msgtype not a string", with_header(_set("msgtype", 7))),
    corrupt("reqid not a string", with_header(_set("reqid", 5))),
    corrupt("num_buffers a string", with_header(_set("num_buffers", "1"))),
    corrupt("num_buffers true", with_header(_set("num_buffers", True))),
    corrupt("num_buffers negative", with_header(_set("num_buffers", -1))),
    corrupt("num_buffers huge", with_header(_set("num_buffers", 10**12))),
    corrupt("buffer header with a second key", at(3, const('{"id": "b1", "x": 1}'))),
    corrupt("buffer id not a string", at(3, const('{"id": 5}'))),
    corrupt("deeply nested content", at(2, const(DEEP))),
    corrupt("deeply nested metadata", at(1, const(DEEP))),
    corrupt("deeply nested header", at(0, const(DEEP))),
    Case("unknown msgtype", _msgtype("FOO")),
    Case("request type from the server", _msgtype("PULL-DOC-REQ")),
    Case("push request from the server", _msgtype("PUSH-DOC")),
    Case("second ACK", lambda reply_to, doc: _plain(ack_frames())),
    Case("surplus buffer pair", _surplus_buffer),
    Case("too few buffers", _too_few_buffers),
    Case(
        "unsolicited OK with an unknown reqid",
        lambda reply_to, doc: _plain(message_frames(MsgType.OK, reqid="never-sent")),
    ),
    Case(
        "unsolicited ERROR with an unknown reqid",
        lambda reply_to, doc: _plain(
            message_frames(MsgType.ERROR, {"text": "x", "traceback": None}, reqid="never-sent")
        ),
    ),
    Case("ERROR without a reqid", lambda reply_to, doc: _plain(message_frames(MsgType.ERROR))),
    Case(
        "SERVER-INFO-REPLY without a reqid",
        lambda reply_to, doc: _plain(message_frames(MsgType.SERVER_INFO_REPLY)),
    ),
    Case("OK in reply to a pull", _msgtype("OK"), reply_only=True),
    Case("PATCH-DOC in reply to a pull", _msgtype("PATCH-DOC"), reply_only=True),
    Case(
        "ERROR reply without text",
        lambda reply_to, doc: _plain(
            message_frames(MsgType.ERROR, {"traceback": None}, reqid=reply_to)
        ),
        reply_only=True,
    ),
    Case(
        "ERROR reply with a non-string traceback",
        lambda reply_to, doc: _plain(
            message_frames(MsgType.ERROR, {"text": "boom", "traceback": 3}, reqid=reply_to)
        ),
        reply_only=True,
    ),
]

IDS = [case.name for case in CASES]


def assert_failed_and_closed(
    session: ClientSession, error: RemoteProtocolError, record: Any
) -> None:
    """The connection ended with ``error``: closed on both ends, reported everywhere."""
    assert not session.connected
    assert record.wait_gone(), "the fake server never saw the socket close"
    assert record.client_close_code == 1002
    assert session.async_session.last_error is error
    status = session.status
    assert status.state is SessionState.ERROR
    assert status.last_error == str(error)
    with stopwatch() as watch, pytest.raises(RemoteProtocolError) as again:
        session.force_roundtrip()
    assert again.value is error
    assert watch.elapsed < FAST


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_reply_fails_the_call_in_flight(server: FakeServer, case: Case) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(case.build(request.msgid, peer.doc))

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, timeout=2, reconnect=None)
    try:
        with stopwatch() as watch, pytest.raises(RemoteProtocolError) as info:
            session.pull()
        assert watch.elapsed < FAST
        assert session.document is None
        assert_failed_and_closed(session, info.value, endpoint.record)
    finally:
        session.close()


@pytest.mark.parametrize("case", [c for c in CASES if not c.reply_only], ids=lambda c: c.name)
def test_bad_unsolicited_message_fails_the_next_call(server: FakeServer, case: Case) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        await peer.send(case.build(None, peer.doc))

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, timeout=2, reconnect=None)
    try:
        session.pull()
        with stopwatch() as watch:
            session.loop_until_closed()
        assert watch.elapsed < FAST
        error = session.async_session.last_error
        assert isinstance(error, RemoteProtocolError)
        assert_failed_and_closed(session, error, endpoint.record)
        doc = session.document
        assert doc is not None
        div = doc.select_one({"name": "div"})
        src = doc.select_one({"name": "src"})
        assert isinstance(div, Div) and isinstance(src, ColumnDataSource)
        assert div.text == "hello"
        assert list(src.data["x"]) == [0.0, 1.0, 2.0, 3.0], "part of a rejected patch applied"
    finally:
        session.close()
