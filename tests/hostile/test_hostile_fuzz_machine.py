"""Fuzz the receiving side of the sans-I/O core with mutated server traffic.

Thousands of mutated fragment sequences go straight into ``ClientProtocol``: the
only exceptions that may escape are RemoteProtocolError (the server's fault) and,
once the machine has failed, LocalProtocolError. Every event it emits must be
consistent with the requests actually pending.
"""

from __future__ import annotations

import pytest
from hostile_fuzz import REQUESTS, Fragment, scripts
from hypothesis import HealthCheck, given, settings

from bokeh_nb_client.exceptions import LocalProtocolError, RemoteProtocolError
from bokeh_nb_client.protocol import (
    Acknowledged,
    ClientProtocol,
    ErrorReplyReceived,
    MsgType,
    PatchReceived,
    ReplyReceived,
    State,
    counter_ids,
)
from bokeh_nb_client.protocol.messages import REPLY_TYPE

FUZZ = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def feed(pre: list[Fragment], post: list[Fragment]) -> None:
    protocol = ClientProtocol(counter_ids())
    pending: dict[str, MsgType] = {}
    acked = False
    try:
        for index, fragment in enumerate([*pre, *post]):
            event = protocol.receive_fragment(fragment)
            if event is None:
                continue
            match event:
                case Acknowledged():
                    assert not acked, "two Acknowledged events"
                    acked = True
                    assert protocol.state is State.OPEN
                    for msgtype in REQUESTS:
                        msgid, fragments = protocol.send_request(msgtype, {})
                        assert fragments and isinstance(fragments[0], str)
                        pending[msgid] = msgtype
                case ReplyReceived(reqid=reqid, request_type=rtype, message=message):
                    assert acked
                    assert pending.pop(reqid) is rtype, "a reply to no pending request"
                    assert message.msgtype == REPLY_TYPE[rtype]
                    assert message.num_buffers == message.header.get("num_buffers", 0)
                case ErrorReplyReceived(reqid=reqid, request_type=rtype, text=text):
                    assert acked
                    assert pending.pop(reqid) is rtype
                    assert isinstance(text, str)
                case PatchReceived(message=message):
                    assert acked
                    assert message.msgtype == MsgType.PATCH_DOC and message.reqid is None
            assert dict(protocol.pending) == pending
            assert index < len(pre) or acked or event is None
    except RemoteProtocolError:
        assert protocol.state is State.CLOSED
        assert protocol.failure is not None
        with pytest.raises(LocalProtocolError):
            protocol.receive_fragment("{}")
        with pytest.raises(LocalProtocolError):
            protocol.send_request(MsgType.SERVER_INFO_REQ, {})
    terminated = protocol.receive_close(1006, "")
    assert set(terminated.pending) <= set(pending)
    assert protocol.state is State.CLOSED
    assert protocol.receive_close(1000, "").pending == ()


@pytest.mark.usefixtures("frozen_heap")
@FUZZ
@given(scripts())
def test_only_protocol_errors_escape_the_machine(
    script: tuple[list[Fragment], list[Fragment]],
) -> None:
    pre, post = script
    feed(pre, post)


def test_the_unmutated_traffic_is_accepted() -> None:
    from hostile_fuzz import ACK, post_messages

    protocol = ClientProtocol(counter_ids())
    events = [protocol.receive_fragment(f) for f in ACK]
    assert isinstance(events[-1], Acknowledged)
    for msgtype in REQUESTS:
        protocol.send_request(msgtype, {})
    kinds = []
    for message in post_messages():
        for fragment in message:
            event = protocol.receive_fragment(fragment)
            if event is not None:
                kinds.append(type(event).__name__)
    assert kinds == [
        "ReplyReceived",
        "PatchReceived",
        "ReplyReceived",
        "PatchReceived",
        "ReplyReceived",
        "ErrorReplyReceived",
    ]
    assert not protocol.pending
