"""ClientProtocol: the state table, request/reply correlation and errors (PROTOCOL.md §3, §5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bokeh_nb_client.exceptions import LocalProtocolError, RemoteProtocolError
from bokeh_nb_client.protocol import (
    CLIENT_REQUESTS,
    REPLY_TYPE,
    Acknowledged,
    ClientProtocol,
    ConnectionTerminated,
    ErrorReplyReceived,
    Event,
    MsgType,
    PatchReceived,
    ReplyReceived,
    State,
    WireMessage,
    counter_ids,
    encode,
)

_server_ids = iter(range(1000, 10**9))


def server_fragments(
    msgtype: str,
    *,
    reqid: str | None = None,
    content: Any = None,
    buffers: list[tuple[str, bytes]] | None = None,
) -> list[str | bytes]:
    header: dict[str, Any] = {"msgid": f"p{next(_server_ids)}", "msgtype": msgtype}
    if reqid is not None:
        header["reqid"] = reqid
    fragments = encode(header, {}, {} if content is None else content, buffers or [])
    return [bytes(f) if isinstance(f, memoryview) else f for f in fragments]


def deliver(protocol: ClientProtocol, fragments: list[str | bytes]) -> Event | None:
    """Feed a whole message; only the last fragment may produce an event."""
    for fragment in fragments[:-1]:
        assert protocol.receive_fragment(fragment) is None
    return protocol.receive_fragment(fragments[-1])


def opened(id_factory: Any = None) -> ClientProtocol:
    protocol = ClientProtocol(id_factory)
    event = deliver(protocol, server_fragments("ACK"))
    assert isinstance(event, Acknowledged)
    return protocol


def assert_fails(protocol: ClientProtocol, fragments: list[str | bytes], match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match) as info:
        deliver(protocol, fragments)
    assert protocol.state is State.CLOSED
    assert protocol.failure is info.value


# -- before ACK -------------------------------------------------------------------


def test_initial_state() -> None:
    protocol = ClientProtocol()
    assert protocol.state is State.AWAITING_ACK
    assert dict(protocol.pending) == {}
    assert protocol.failure is None


def test_ack_opens() -> None:
    protocol = ClientProtocol()
    fragments = server_fragments("ACK")
    event = deliver(protocol, fragments)
    assert isinstance(event, Acknowledged)
    assert event.message.msgtype == "ACK"
    assert protocol.state is State.OPEN


@pytest.mark.parametrize("msgtype", [t.value for t in MsgType if t is not MsgType.ACK] + ["BOGUS"])
def test_anything_but_ack_first_is_an_error(msgtype: str) -> None:
    protocol = ClientProtocol()
    assert_fails(protocol, server_fragments(msgtype, reqid="c1"), f"received {msgtype} before ACK")


@pytest.mark.parametrize("msgtype", sorted(CLIENT_REQUESTS))
def test_nothing_may_be_sent_before_ack(msgtype: MsgType) -> None:
    protocol = ClientProtocol()
    with pytest.raises(LocalProtocolError, match="nothing may be sent before the server's ACK"):
        protocol.send_request(msgtype, {})
    assert protocol.state is State.AWAITING_ACK
    assert dict(protocol.pending) == {}


def test_framing_error_before_ack_closes() -> None:
    protocol = ClientProtocol()
    assert_fails(protocol, [b"binary"], "expected a text fragment for the header")


# -- requests and replies -----------------------------------------------------------


@pytest.mark.parametrize("request_type", sorted(CLIENT_REQUESTS))
def test_each_request_gets_its_reply(request_type: MsgType) -> None:
    protocol = opened()
    msgid, fragments = protocol.send_request(request_type, {"k": 1})
    assert msgid == "c1"
    assert json.loads(str(fragments[0])) == {"msgid": "c1", "msgtype": request_type.value}
    assert fragments[1:] == ["{}", '{"k":1}']
    assert dict(protocol.pending) == {"c1": request_type}

    reply_type = REPLY_TYPE[request_type]
    event = deliver(protocol, server_fragments(reply_type, reqid="c1", content={"r": 2}))
    assert isinstance(event, ReplyReceived)
    assert (event.reqid, event.request_type) == ("c1", request_type)
    assert event.message.msgtype == reply_type
    assert event.message.content == {"r": 2}
    assert dict(protocol.pending) == {}
    assert protocol.state is State.OPEN


def test_send_request_with_buffers_and_metadata() -> None:
    protocol = opened()
    msgid, fragments = protocol.send_request(
        MsgType.PATCH_DOC, {"events": []}, buffers=[("b1", b"\x01\x02")], metadata={"m": 1}
    )
    assert json.loads(str(fragments[0])) == {
        "msgid": msgid,
        "msgtype": "PATCH-DOC",
        "num_buffers": 1,
    }
    assert fragments[1:] == ['{"m":1}', '{"events":[]}', '{"id":"b1"}', b"\x01\x02"]


def test_send_request_accepts_msgtype_strings() -> None:
    protocol = opened()
    _, fragments = protocol.send_request("PULL-DOC-REQ", {})  # type: ignore[arg-type]
    assert json.loads(str(fragments[0]))["msgtype"] == "PULL-DOC-REQ"
    assert protocol.pending["c1"] is MsgType.PULL_DOC_REQ


@pytest.mark.parametrize(
    "msgtype",
    [
        MsgType.ACK,
        MsgType.OK,
        MsgType.ERROR,
        MsgType.PULL_DOC_REPLY,
        MsgType.SERVER_INFO_REPLY,
        "NOPE",
    ],
)
def test_only_client_requests_may_be_sent(msgtype: Any) -> None:
    protocol = opened()
    with pytest.raises(LocalProtocolError):
        protocol.send_request(msgtype, {})
    assert dict(protocol.pending) == {}
    assert protocol.state is State.OPEN


def test_unencodable_content_leaves_nothing_pending() -> None:
    protocol = opened()
    with pytest.raises(ValueError, match="JSON"):
        protocol.send_request(MsgType.PATCH_DOC, {"x": float("nan")})
    with pytest.raises(TypeError):
        protocol.send_request(MsgType.PATCH_DOC, {"x": object()})
    assert dict(protocol.pending) == {}


def test_replies_are_correlated_out_of_order() -> None:
    protocol = opened()
    pull, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    info, _ = protocol.send_request(MsgType.SERVER_INFO_REQ, {})
    patch, _ = protocol.send_request(MsgType.PATCH_DOC, {"events": []})
    assert list(protocol.pending) == [pull, info, patch]

    events = [
        deliver(protocol, server_fragments("OK", reqid=patch)),
        deliver(protocol, server_fragments("PULL-DOC-REPLY", reqid=pull, buffers=[("x", b"1")])),
        deliver(protocol, server_fragments("SERVER-INFO-REPLY", reqid=info)),
    ]
    assert [(e.reqid, e.request_type) for e in events if isinstance(e, ReplyReceived)] == [
        (patch, MsgType.PATCH_DOC),
        (pull, MsgType.PULL_DOC_REQ),
        (info, MsgType.SERVER_INFO_REQ),
    ]
    assert isinstance(events[1], ReplyReceived)
    assert events[1].message.buffers == (("x", b"1"),)
    assert dict(protocol.pending) == {}


def test_patches_arrive_between_request_and_reply() -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {"events": []})
    patch = deliver(protocol, server_fragments("PATCH-DOC", content={"events": [1]}))
    assert isinstance(patch, PatchReceived)
    assert patch.message.content == {"events": [1]}
    assert msgid in protocol.pending
    assert isinstance(deliver(protocol, server_fragments("OK", reqid=msgid)), ReplyReceived)


def test_patch_with_buffers() -> None:
    protocol = opened()
    event = deliver(protocol, server_fragments("PATCH-DOC", buffers=[("p9", b"\x00" * 16)]))
    assert isinstance(event, PatchReceived)
    assert event.message.buffers == (("p9", b"\x00" * 16),)


def test_pending_is_a_read_only_live_view() -> None:
    protocol = opened()
    view = protocol.pending
    msgid, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    assert view[msgid] is MsgType.PULL_DOC_REQ
    with pytest.raises(TypeError):
        view["x"] = MsgType.OK  # type: ignore[index]


# -- ERROR replies ------------------------------------------------------------------


@pytest.mark.parametrize("request_type", sorted(CLIENT_REQUESTS))
def test_error_reply(request_type: MsgType) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(request_type, {})
    content = {"text": "UnknownReferenceError('x')", "traceback": "Traceback ..."}
    event = deliver(protocol, server_fragments("ERROR", reqid=msgid, content=content))
    assert event == ErrorReplyReceived(
        msgid, request_type, "UnknownReferenceError('x')", "Traceback ..."
    )
    assert dict(protocol.pending) == {}
    assert protocol.state is State.OPEN  # an ERROR does not close the connection


@pytest.mark.parametrize("content", [{"text": "t", "traceback": None}, {"text": "t"}])
def test_error_reply_without_traceback(content: dict[str, Any]) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PUSH_DOC, {})
    event = deliver(protocol, server_fragments("ERROR", reqid=msgid, content=content))
    assert isinstance(event, ErrorReplyReceived)
    assert event.traceback is None


@pytest.mark.parametrize(
    "content", [{}, [], "boom", {"text": 1}, {"text": None}, {"text": "t", "traceback": 3}]
)
def test_malformed_error_reply(content: Any) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    assert_fails(protocol, server_fragments("ERROR", reqid=msgid, content=content), "malformed")
    # The request is still reported as pending on close, so its caller can fail.
    assert protocol.receive_close(1006, "").pending == (msgid,)


# -- wrong replies ----------------------------------------------------------------


WRONG_REPLIES = [
    (request_type, reply_type)
    for request_type in sorted(CLIENT_REQUESTS)
    for reply_type in ["OK", "PULL-DOC-REPLY", "SERVER-INFO-REPLY", "PATCH-DOC"]
    if REPLY_TYPE[request_type] != reply_type
]


@pytest.mark.parametrize(("request_type", "reply_type"), WRONG_REPLIES)
def test_reply_of_the_wrong_type(request_type: MsgType, reply_type: str) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(request_type, {})
    assert_fails(
        protocol,
        server_fragments(reply_type, reqid=msgid),
        f"received {reply_type} in reply to {request_type}",
    )


@pytest.mark.parametrize(
    "msgtype", ["OK", "ERROR", "PULL-DOC-REPLY", "SERVER-INFO-REPLY", "PATCH-DOC"]
)
def test_unsolicited_reply(msgtype: str) -> None:
    protocol = opened()
    protocol.send_request(MsgType.PULL_DOC_REQ, {})
    assert_fails(protocol, server_fragments(msgtype, reqid="c99"), "unsolicited reply")


def test_second_reply_to_the_same_request_is_unsolicited() -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    deliver(protocol, server_fragments("OK", reqid=msgid))
    assert_fails(protocol, server_fragments("OK", reqid=msgid), "unsolicited reply")


@pytest.mark.parametrize("msgtype", ["OK", "ERROR", "PULL-DOC-REPLY", "SERVER-INFO-REPLY"])
def test_reply_type_without_reqid(msgtype: str) -> None:
    assert_fails(opened(), server_fragments(msgtype), f"received {msgtype} without a reqid")


@pytest.mark.parametrize("msgtype", ["PULL-DOC-REQ", "PUSH-DOC", "SERVER-INFO-REQ"])
@pytest.mark.parametrize("with_reqid", [False, True])
def test_server_sent_request_types(msgtype: str, with_reqid: bool) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    reqid = msgid if with_reqid else None
    assert_fails(protocol, server_fragments(msgtype, reqid=reqid), "which only a client may send")


@pytest.mark.parametrize("msgtype", ["BOGUS", "ack", "", "PATCH_DOC"])
def test_unknown_msgtype(msgtype: str) -> None:
    assert_fails(opened(), server_fragments(msgtype), "unknown msgtype")


def test_second_ack() -> None:
    assert_fails(opened(), server_fragments("ACK"), "second ACK")


def test_framing_error_when_open() -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    assert_fails(protocol, ['{"msgid": "p1", "msgtype": "OK", "reqid": "c1"}', "{"], "metadata")
    assert protocol.receive_close(1006, "").pending == (msgid,)


# -- abandoned requests -------------------------------------------------------------


@pytest.mark.parametrize("reply_type", ["OK", "ERROR"])
def test_reply_to_abandoned_request_is_dropped(reply_type: str) -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    protocol.abandon_request(msgid)
    assert dict(protocol.pending) == {}
    content = {"text": "t", "traceback": None} if reply_type == "ERROR" else {}
    assert deliver(protocol, server_fragments(reply_type, reqid=msgid, content=content)) is None
    assert protocol.state is State.OPEN
    # Forgotten after that: a second reply is unsolicited.
    assert_fails(protocol, server_fragments("OK", reqid=msgid), "unsolicited reply")


def test_abandoned_reply_of_the_wrong_type_is_still_an_error() -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    protocol.abandon_request(msgid)
    assert_fails(protocol, server_fragments("OK", reqid=msgid), "expected PULL-DOC-REPLY")


def test_abandon_unknown_or_answered_request_is_a_no_op() -> None:
    protocol = opened()
    protocol.abandon_request("never-sent")
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    deliver(protocol, server_fragments("OK", reqid=msgid))
    protocol.abandon_request(msgid)
    assert_fails(protocol, server_fragments("OK", reqid=msgid), "unsolicited reply")


def test_abandoned_requests_are_not_reported_on_close() -> None:
    protocol = opened()
    kept, _ = protocol.send_request(MsgType.PULL_DOC_REQ, {})
    dropped, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    protocol.abandon_request(dropped)
    assert protocol.receive_close(1000, "").pending == (kept,)


# -- closing ------------------------------------------------------------------------


def test_send_close_then_replies_still_arrive() -> None:
    protocol = opened()
    msgid, _ = protocol.send_request(MsgType.PATCH_DOC, {})
    protocol.send_close()
    assert protocol.state is State.CLOSING
    assert isinstance(deliver(protocol, server_fragments("PATCH-DOC")), PatchReceived)
    assert isinstance(deliver(protocol, server_fragments("OK", reqid=msgid)), ReplyReceived)
    with pytest.raises(LocalProtocolError, match="closing"):
        protocol.send_request(MsgType.PATCH_DOC, {})
    protocol.send_close()  # no-op
    assert protocol.state is State.CLOSING
    assert protocol.receive_close(1000, "bye") == ConnectionTerminated(1000, "bye", ())
    assert protocol.state.name == "CLOSED"  # (.name: mypy narrowed .state above)


def test_second_ack_while_closing() -> None:
    protocol = opened()
    protocol.send_close()
    assert_fails(protocol, server_fragments("ACK"), "second ACK")


def test_close_before_ack_still_accepts_the_ack() -> None:
    protocol = ClientProtocol()
    protocol.send_close()
    assert protocol.state is State.CLOSING
    assert isinstance(deliver(protocol, server_fragments("ACK")), Acknowledged)
    assert protocol.state is State.CLOSING
    with pytest.raises(LocalProtocolError):
        protocol.send_request(MsgType.PULL_DOC_REQ, {})


def test_close_before_ack_still_requires_ack_first() -> None:
    protocol = ClientProtocol()
    protocol.send_close()
    assert_fails(protocol, server_fragments("PATCH-DOC"), "before ACK")


@pytest.mark.parametrize("setup", ["awaiting", "open", "closing", "failed"])
def test_receive_close_from_every_state(setup: str) -> None:
    protocol = ClientProtocol() if setup == "awaiting" else opened()
    if setup == "closing":
        protocol.send_close()
    if setup == "failed":
        with pytest.raises(RemoteProtocolError):
            protocol.receive_fragment(b"x")
    terminated = protocol.receive_close(1006, "")
    assert terminated == ConnectionTerminated(1006, "", ())
    assert protocol.state is State.CLOSED


def test_receive_close_returns_pending_in_order_and_clears_them() -> None:
    protocol = opened()
    ids = [protocol.send_request(t, {})[0] for t in (MsgType.PULL_DOC_REQ, MsgType.PATCH_DOC)]
    protocol.send_close()
    terminated = protocol.receive_close(10001, "protocol error")
    assert terminated == ConnectionTerminated(10001, "protocol error", tuple(ids))
    assert dict(protocol.pending) == {}
    assert protocol.receive_close(10001, "again").pending == ()


def test_nothing_is_received_or_sent_after_close() -> None:
    protocol = opened()
    protocol.receive_close(1000, "")
    with pytest.raises(LocalProtocolError, match="closed"):
        protocol.receive_fragment("{}")
    with pytest.raises(LocalProtocolError, match="closed"):
        protocol.send_request(MsgType.PULL_DOC_REQ, {})
    protocol.send_close()
    assert protocol.state is State.CLOSED


def test_receive_after_failure_is_local_error_chained_to_the_failure() -> None:
    protocol = opened()
    with pytest.raises(RemoteProtocolError) as failure:
        protocol.receive_fragment(b"x")
    with pytest.raises(LocalProtocolError) as later:
        protocol.receive_fragment("{}")
    assert later.value.__cause__ is failure.value


# -- ids --------------------------------------------------------------------------


def test_counter_ids_are_deterministic_and_independent() -> None:
    first, second = counter_ids(), counter_ids("x")
    assert [first(), first(), second(), first()] == ["c1", "c2", "x1", "c3"]


def test_injected_id_factory() -> None:
    protocol = opened(counter_ids("req-"))
    assert [protocol.send_request(MsgType.PATCH_DOC, {})[0] for _ in range(3)] == [
        "req-1",
        "req-2",
        "req-3",
    ]


def test_repeated_id_in_use_is_refused() -> None:
    protocol = opened(lambda: "same")
    protocol.send_request(MsgType.PATCH_DOC, {})
    with pytest.raises(LocalProtocolError, match="still in use"):
        protocol.send_request(MsgType.PATCH_DOC, {})
    deliver(protocol, server_fragments("OK", reqid="same"))
    assert protocol.send_request(MsgType.PATCH_DOC, {})[0] == "same"


def test_events_are_immutable_values() -> None:
    message = WireMessage({"msgid": "p", "msgtype": "PATCH-DOC"}, {}, {})
    event = PatchReceived(message)
    assert event == PatchReceived(message)
    with pytest.raises(AttributeError):
        event.message = message  # type: ignore[misc]
