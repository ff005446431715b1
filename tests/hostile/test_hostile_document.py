"""Well-framed but wrong messages: patches that cannot apply, replies that make no sense.

A server PATCH-DOC that cannot be applied (an unknown model, a buffer that is not
there, a value bokeh cannot decode) must not crash the session nor leave a half
applied patch: the session re-pulls the server's document and goes on working.
A reply whose content makes no sense must fail the call with a typed error and
must not touch the document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, ModelChangedEvent
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div
from hostile_checks import stopwatch
from hostile_server import FakeServer, Peer, doc_content, message_frames

from bokeh_nb_client import ClientSession
from bokeh_nb_client.exceptions import RemoteProtocolError, UnknownModelTypes
from bokeh_nb_client.protocol import MsgType

TIMEOUT = 2.0
FAST = 1.5
OPTIONS: dict[str, Any] = {"timeout": TIMEOUT, "reconnect": None}


def div_of(doc: Document | None) -> Div:
    assert doc is not None
    div = doc.select_one({"name": "div"})
    assert isinstance(div, Div)
    return div


def src_of(doc: Document | None) -> ColumnDataSource:
    assert doc is not None
    src = doc.select_one({"name": "src"})
    assert isinstance(src, ColumnDataSource)
    return src


def ndarray_ref(buffer_id: str, length: int = 4) -> dict[str, Any]:
    return {
        "type": "ndarray",
        "array": {"type": "bytes", "data": {"id": buffer_id}},
        "shape": [length],
        "dtype": "float64",
        "order": "little",
    }


def column_event(doc: Document, buffer_id: str) -> dict[str, Any]:
    return {
        "kind": "ColumnDataChanged",
        "model": {"id": src_of(doc).id},
        "attr": "data",
        "data": {"type": "map", "entries": [["x", ndarray_ref(buffer_id)]]},
        "cols": ["x"],
    }


def text_event(doc: Document, text: str) -> dict[str, Any]:
    return {"kind": "ModelChanged", "model": {"id": div_of(doc).id}, "attr": "text", "new": text}


EIGHTS = np.full(4, 8.0).tobytes()

# Each builder gets the server's document and returns (events, buffers) of a
# PATCH-DOC that must be refused as a whole. Where it carries a valid event too,
# that event sets the div's text to "half": it must never be seen applied.
BAD_PATCHES: dict[str, Any] = {
    "unknown model": lambda d: (
        [{"kind": "ModelChanged", "model": {"id": "nope"}, "attr": "text", "new": "x"}],
        [],
    ),
    "valid event then unknown model": lambda d: (
        [
            text_event(d, "half"),
            {"kind": "ModelChanged", "model": {"id": "nope"}, "attr": "text", "new": "x"},
        ],
        [],
    ),
    "unknown model in a value": lambda d: (
        [text_event(d, "half"), {**text_event(d, "x"), "attr": "tags", "new": [{"id": "nope"}]}],
        [],
    ),
    "buffer id that does not match": lambda d: ([column_event(d, "b1")], [("b2", EIGHTS)]),
    "valid event then missing buffer": lambda d: (
        [text_event(d, "half"), column_event(d, "b1")],
        [("other", EIGHTS)],
    ),
    "valid event then invalid value": lambda d: (
        [text_event(d, "half"), {**text_event(d, "x"), "attr": "width", "new": "wide"}],
        [],
    ),
    "buffer shorter than its shape": lambda d: ([column_event(d, "b1")], [("b1", b"\x00" * 3)]),
    "unknown event kind": lambda d: ([{"kind": "Explode", "model": {"id": div_of(d).id}}], []),
    "event without a kind": lambda d: ([{"model": {"id": div_of(d).id}}], []),
    "events not a list": lambda d: ({"kind": "ModelChanged"}, []),
    "unknown model type in a new object": lambda d: (
        [
            {
                "kind": "RootAdded",
                "model": {"type": "object", "name": "NoSuchModel", "id": "n1", "attributes": {}},
            }
        ],
        [],
    ),
}


def bad_patch_frames(doc: Document, name: str) -> list[Any]:
    events, buffers = BAD_PATCHES[name](doc)
    header = {"msgid": "s-bad", "msgtype": "PATCH-DOC", "num_buffers": len(buffers)}
    frames: list[Any] = [json.dumps(header), "{}", json.dumps({"events": events})]
    for buffer_id, payload in buffers:
        frames += [json.dumps({"id": buffer_id}), payload]
    return frames


def record_text_changes(doc: Document) -> list[str]:
    seen: list[str] = []

    def listener(event: DocumentChangedEvent) -> None:
        if isinstance(event, ModelChangedEvent) and event.attr == "text":
            seen.append(str(event.new))

    doc.on_change(listener)
    return seen


def _run_bad_patch(server: FakeServer, name: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        roundtrip = await peer.expect(MsgType.SERVER_INFO_REQ)
        # The server moved on meanwhile; only a re-pull can tell the client.
        div_of(peer.doc).text = "server truth"
        # The bad patch goes out before the round trip's reply, so it has been
        # applied (or refused) when the client's force_roundtrip() returns.
        await peer.send(bad_patch_frames(peer.doc, name))
        await peer.answer(roundtrip)
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        session.pull()
        seen = record_text_changes(session.document)  # type: ignore[arg-type]
        session.force_roundtrip()
        assert endpoint.record.wait_for_message(MsgType.PULL_DOC_REQ, count=2), "no re-pull"
        session.force_roundtrip()  # the re-pull's reply came first and is installed
        doc = session.document
        assert div_of(doc).text == "server truth"
        assert list(src_of(doc).data["x"]) == [0.0, 1.0, 2.0, 3.0]
        assert "half" not in seen, "part of a refused patch was applied"
        assert session.connected
        div_of(doc).text = "client again"
        session.force_roundtrip()
        assert endpoint.record.msgtypes().count(MsgType.PATCH_DOC) == 1
    finally:
        session.close()


PARTLY_APPLIED = {"valid event then invalid value"}

CASES = [pytest.param(name) if name in PARTLY_APPLIED else name for name in BAD_PATCHES]


@pytest.mark.parametrize("name", CASES)
def test_unappliable_patch_repulls_and_the_session_goes_on(server: FakeServer, name: str) -> None:
    _run_bad_patch(server, name)


@pytest.mark.parametrize("depth", [100, 600, 3000, 100_000])
def test_deeply_nested_patch_value_never_breaks_the_session(server: FakeServer, depth: int) -> None:
    """How deep a value may nest before parsing or decoding gives up depends on the
    stack, so each outcome is accepted: applied, refused and re-pulled, or refused
    as bad framing (RemoteProtocolError, connection closed). Never a crash or a hang."""

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        roundtrip = await peer.expect(MsgType.SERVER_INFO_REQ)
        model = json.dumps({"id": div_of(peer.doc).id})
        value = "[" * depth + "]" * depth
        event = f'{{"kind":"ModelChanged","model":{model},"attr":"tags","new":{value}}}'
        content = f'{{"events":[{event}]}}'
        await peer.send(['{"msgid":"s-deep","msgtype":"PATCH-DOC"}', "{}", content])
        await peer.answer(roundtrip)
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        session.pull()
        with stopwatch() as watch:
            try:
                session.force_roundtrip()
            except RemoteProtocolError:
                assert not session.connected
                assert endpoint.record.wait_gone()
            else:
                assert session.connected
        assert watch.elapsed < FAST
        assert div_of(session.document).text == "hello"
    finally:
        session.close()


# -- replies whose content is wrong ---------------------------------------------------


def pull_then_ask_info(session: ClientSession) -> object:
    session.pull()
    return session.request_server_info()


def failure_of(call: Callable[[], object]) -> BaseException:
    """Run ``call`` and return what it raised; fail the test if it raised nothing."""
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call succeeded")


def _pull_reply(doc: Document, reqid: str, case: str) -> list[Any]:
    content, buffers = doc_content(doc)
    parsed = json.loads(content)
    if case == "content without doc":
        parsed = {}
    elif case == "doc not an object":
        parsed = {"doc": 5}
    elif case == "doc without roots":  # a key every bokeh 3.x reads ("config" is 3.9+)
        parsed["doc"].pop("roots")
    elif case == "unknown model type":
        parsed["doc"]["roots"].append(
            {"type": "object", "name": "NoSuchModel", "id": "n1", "attributes": {}}
        )
    elif case == "buffer id that does not match":
        buffers = [("renamed", payload) for _, payload in buffers]
    elif case == "buffer missing":
        buffers = []
    header: dict[str, Any] = {"msgid": "s-reply", "msgtype": "PULL-DOC-REPLY", "reqid": reqid}
    header["num_buffers"] = len(buffers)
    frames: list[Any] = [json.dumps(header), "{}", json.dumps(parsed)]
    for buffer_id, payload in buffers:
        frames += [json.dumps({"id": buffer_id}), payload]
    return frames


PULL_CASES = [
    "content without doc",
    "doc not an object",
    "doc without roots",
    "unknown model type",
    "buffer id that does not match",
    "buffer missing",
]


@pytest.mark.parametrize("case", PULL_CASES)
def test_malformed_first_pull_reply_is_a_typed_error(server: FakeServer, case: str) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(_pull_reply(peer.doc, request.msgid, case))
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        with stopwatch() as watch:
            error = failure_of(session.pull)
        assert watch.elapsed < FAST
        assert session.document is None
        # A model type this process lacks is the server's document, not a corrupt
        # reply: UnknownModelTypes names it (and the package to import).
        expected = UnknownModelTypes if case == "unknown model type" else RemoteProtocolError
        assert isinstance(error, expected), repr(error)
    finally:
        session.close()


@pytest.mark.parametrize("case", PULL_CASES)
def test_malformed_repull_reply_leaves_the_document_untouched(
    server: FakeServer, case: str
) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        request = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(_pull_reply(peer.doc, request.msgid, case))
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        session.pull()
        doc = session.document
        with stopwatch() as watch:
            failure_of(session.pull)  # its type is the previous test's concern
        assert watch.elapsed < FAST
        assert session.document is doc
        assert div_of(doc).text == "hello"
        assert list(src_of(doc).data["x"]) == [0.0, 1.0, 2.0, 3.0]
        assert len(doc.roots) == 2  # type: ignore[union-attr]
        session.force_roundtrip()
    finally:
        session.close()


@pytest.mark.parametrize(
    "content",
    [{}, {"version_info": None}, {"version_info": {"bokeh": 5}}, {"version_info": {}}, []],
    ids=["empty", "version_info null", "version not a string", "no bokeh key", "a list"],
)
def test_malformed_server_info_reply_is_a_typed_error(server: FakeServer, content: Any) -> None:
    async def script(peer: Peer) -> None:
        await peer.ack()
        request = await peer.expect(MsgType.SERVER_INFO_REQ)
        await peer.send(message_frames(MsgType.SERVER_INFO_REPLY, content, reqid=request.msgid))
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        with stopwatch() as watch:
            error = failure_of(lambda: pull_then_ask_info(session))
        assert watch.elapsed < FAST
        assert isinstance(error, RemoteProtocolError), repr(error)
    finally:
        session.close()


def test_failed_background_repull_is_reported(server: FakeServer) -> None:
    """A re-pull triggered by a refused patch meets a malformed reply: the failure
    must be reported in the status (the session's own re-pull task owns it)."""

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.answer(await peer.expect(MsgType.PULL_DOC_REQ))
        roundtrip = await peer.expect(MsgType.SERVER_INFO_REQ)
        await peer.send(bad_patch_frames(peer.doc, "unknown model"))
        await peer.answer(roundtrip)
        repull = await peer.expect(MsgType.PULL_DOC_REQ)
        await peer.send(_pull_reply(peer.doc, repull.msgid, "content without doc"))
        await peer.serve()

    endpoint = server.endpoint(script)
    session = ClientSession(websocket_url=endpoint.ws_url, **OPTIONS)
    try:
        session.pull()
        session.force_roundtrip()
        assert endpoint.record.wait_for_message(MsgType.PULL_DOC_REQ, count=2)
        # The re-pull's failure is reported by its own task on the I/O loop, just
        # after the install failed on this thread: round-trip until it is.
        deadline = time.monotonic() + 5
        while "re-pull failed" not in (session.status.last_error or ""):
            assert time.monotonic() < deadline, session.status.last_error
            session.force_roundtrip()
        assert div_of(session.document).text == "hello"
        assert session.connected
    finally:
        session.close()
