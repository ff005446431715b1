"""Framing: encode() and the Assembler (PROTOCOL.md §2)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bokeh_nb_client.exceptions import RemoteProtocolError
from bokeh_nb_client.protocol.wire import (
    MAX_BUFFERS,
    Assembler,
    AssemblerState,
    Fragment,
    JsonText,
    OutFragment,
    WireMessage,
    encode,
)

HEADER = '{"msgid":"p1","msgtype":"PATCH-DOC"}'


def as_fragment(fragment: OutFragment) -> Fragment:
    return bytes(fragment) if isinstance(fragment, memoryview) else fragment


def feed_all(assembler: Assembler, fragments: list[OutFragment]) -> list[WireMessage]:
    messages = []
    for fragment in fragments:
        message = assembler.feed(as_fragment(fragment))
        if message is not None:
            messages.append(message)
    return messages


def header_with_buffers(n: int) -> str:
    return json.dumps({"msgid": "p1", "msgtype": "PATCH-DOC", "num_buffers": n})


def at_state(state: AssemblerState) -> Assembler:
    """An assembler fed just far enough to expect ``state`` (message with 2 buffers)."""
    steps: list[Fragment] = [header_with_buffers(2), "{}", "{}", '{"id":"a"}', b"x"]
    order = [
        AssemblerState.HEADER,
        AssemblerState.METADATA,
        AssemblerState.CONTENT,
        AssemblerState.BUFFER_HEADER,
        AssemblerState.BUFFER_PAYLOAD,
    ]
    assembler = Assembler()
    for fragment in steps[: order.index(state)]:
        assert assembler.feed(fragment) is None
    assert assembler.state is state
    return assembler


# -- encode --------------------------------------------------------------------


def test_encode_without_buffers_gives_three_compact_text_fragments() -> None:
    fragments = encode({"msgid": "c1", "msgtype": "PULL-DOC-REQ"}, {}, {"a": [1, 2.5]})
    assert fragments == ['{"msgid":"c1","msgtype":"PULL-DOC-REQ"}', "{}", '{"a":[1,2.5]}']


def test_encode_with_buffers_sets_num_buffers_and_pairs() -> None:
    header = {"msgid": "c1", "msgtype": "PATCH-DOC"}
    fragments = encode(header, {}, {}, [("b1", b"\x00\x01"), ("b2", b"")])
    assert json.loads(str(fragments[0]))["num_buffers"] == 2
    assert "num_buffers" not in header  # the caller's header is untouched
    assert fragments[3:] == ['{"id":"b1"}', b"\x00\x01", '{"id":"b2"}', b""]


def test_encode_accepts_matching_num_buffers() -> None:
    header = {"msgid": "c1", "msgtype": "PATCH-DOC", "num_buffers": 1}
    assert len(encode(header, {}, {}, [("b", b"x")])) == 5
    zero = {"msgid": "c1", "msgtype": "PATCH-DOC", "num_buffers": 0}
    assert json.loads(str(encode(zero, {}, {})[0]))["num_buffers"] == 0


@pytest.mark.parametrize(("declared", "count"), [(2, 1), (0, 1), (1, 0), (True, 1), (1.0, 1)])
def test_encode_refuses_disagreeing_num_buffers(declared: Any, count: int) -> None:
    header = {"msgid": "c1", "msgtype": "PATCH-DOC", "num_buffers": declared}
    with pytest.raises(ValueError, match="num_buffers"):
        encode(header, {}, {}, [("b", b"x")] * count)


@pytest.mark.parametrize(
    "header", [{}, {"msgid": "c1"}, {"msgtype": "OK"}, {"msgid": 1, "msgtype": "OK"}]
)
def test_encode_refuses_header_without_ids(header: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="header needs"):
        encode(header, {}, {})


def test_encode_refuses_non_str_buffer_id() -> None:
    with pytest.raises(TypeError, match="buffer id"):
        encode({"msgid": "c1", "msgtype": "PATCH-DOC"}, {}, {}, [(1, b"x")])  # type: ignore[list-item]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_refuses_nan_and_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="JSON"):
        encode({"msgid": "c1", "msgtype": "PATCH-DOC"}, {}, {"x": value})


def test_encode_passes_json_text_through_verbatim() -> None:
    text = JsonText('{ "doc" : {"title": "t"} }')
    fragments = encode({"msgid": "c1", "msgtype": "PUSH-DOC"}, JsonText("{ }"), text)
    assert fragments[1] == "{ }"
    assert fragments[2] == '{ "doc" : {"title": "t"} }'
    assert type(fragments[2]) is str


def test_encode_passes_memoryview_without_copying() -> None:
    data = bytearray(b"abcdef")
    view = memoryview(data)
    fragments = encode({"msgid": "c1", "msgtype": "PATCH-DOC"}, {}, {}, [("b", view)])
    payload = fragments[4]
    assert isinstance(payload, memoryview)
    data[0:1] = b"z"  # zero-copy: the fragment sees the caller's buffer
    assert bytes(payload) == b"zbcdef"


def test_encode_flattens_typed_and_strided_memoryviews() -> None:
    import array

    doubles = memoryview(array.array("d", [1.0, 2.0]))
    strided = memoryview(b"abcdef")[::2]
    fragments = encode(
        {"msgid": "c", "msgtype": "PATCH-DOC"}, {}, {}, [("a", doubles), ("b", strided)]
    )
    first, second = fragments[4], fragments[6]
    assert isinstance(first, memoryview)
    assert (first.format, len(first)) == ("B", 16)
    assert second == b"ace"


# -- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("count", range(10))
def test_round_trip_with_n_buffers(count: int) -> None:
    buffers = [(f"id{i}", bytes([i]) * i) for i in range(count)]
    header = {"msgid": "c7", "msgtype": "PATCH-DOC", "reqid": "x"}
    content = {"events": [{"kind": "ModelChanged", "new": "é\u2603"}]}
    fragments = encode(header, {"m": None}, content, buffers)
    assert len(fragments) == 3 + 2 * count

    assembler = Assembler()
    (message,) = feed_all(assembler, fragments)
    expected_header = dict(header, num_buffers=count) if count else header
    assert message == WireMessage(expected_header, {"m": None}, content, tuple(buffers))
    assert message.msgid == "c7"
    assert message.msgtype == "PATCH-DOC"
    assert message.reqid == "x"
    assert message.num_buffers == count
    assert assembler.state is AssemblerState.HEADER


def test_consecutive_messages_are_assembled_one_by_one() -> None:
    first = encode({"msgid": "1", "msgtype": "OK"}, {}, {})
    second = encode({"msgid": "2", "msgtype": "PATCH-DOC"}, {}, {}, [("b", b"\xff")])
    messages = feed_all(Assembler(), first + second + first)
    assert [m.msgid for m in messages] == ["1", "2", "1"]
    assert messages[1].buffers == (("b", b"\xff"),)
    assert messages[0].reqid is None


def test_zero_num_buffers_completes_at_content() -> None:
    assembler = Assembler()
    assert assembler.feed(header_with_buffers(0)) is None
    assert assembler.feed("{}") is None
    message = assembler.feed("[1]")
    assert message is not None
    assert message.content == [1]
    assert message.buffers == ()


def test_surplus_buffer_header_starts_a_new_message_and_fails_there() -> None:
    # bokeh reads a surplus {"id": ...} as the next header; ours rejects it as one.
    assembler = Assembler()
    feed_all(assembler, [header_with_buffers(0), "{}", "{}"])
    with pytest.raises(RemoteProtocolError, match="msgid"):
        assembler.feed('{"id": "x"}')


def test_whitespace_in_json_is_accepted() -> None:
    message = feed_all(Assembler(), [' { "msgid" : "a" , "msgtype" : "OK" } ', "\n{}\n", " {} "])
    assert message[0].header == {"msgid": "a", "msgtype": "OK"}


def test_bytearray_and_memoryview_are_accepted_as_binary() -> None:
    assembler = at_state(AssemblerState.BUFFER_PAYLOAD)
    assembler.feed(bytearray(b"x"))  # type: ignore[arg-type]
    assembler.feed('{"id":"b"}')
    message = assembler.feed(memoryview(b"yz"))
    assert message is not None
    assert message.buffers == (("a", b"x"), ("b", b"yz"))
    assert type(message.buffers[0][1]) is bytes  # a bytearray is copied


def test_memoryview_payload_is_kept_without_a_copy() -> None:
    # The receive path hands big payloads over as memoryviews; arrays view them.
    backing = bytearray(b"\x00" * 16)
    assembler = at_state(AssemblerState.BUFFER_PAYLOAD)
    assert assembler.feed(memoryview(backing).cast("d")) is None
    assembler.feed('{"id":"b"}')
    message = assembler.feed(b"z")
    assert message is not None
    payload = message.buffers[0][1]
    assert isinstance(payload, memoryview)
    assert payload.format == "B" and payload.nbytes == 16
    backing[0] = 7
    assert payload[0] == 7  # the same memory


def test_non_fragment_raises_type_error_without_failing() -> None:
    assembler = Assembler()
    with pytest.raises(TypeError):
        assembler.feed(42)  # type: ignore[arg-type]
    assert assembler.state is AssemblerState.HEADER


# -- wrong kinds of fragments -----------------------------------------------------

TEXT_STATES = [
    (AssemblerState.HEADER, "the header"),
    (AssemblerState.METADATA, "the metadata"),
    (AssemblerState.CONTENT, "the content"),
    (AssemblerState.BUFFER_HEADER, "the buffer header 2 of 2"),
]


@pytest.mark.parametrize(("state", "part"), TEXT_STATES)
def test_binary_where_text_is_due(state: AssemblerState, part: str) -> None:
    if state is AssemblerState.BUFFER_HEADER:
        assembler = at_state(AssemblerState.BUFFER_PAYLOAD)
        assembler.feed(b"first")
    else:
        assembler = at_state(state)
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(b"{}")
    assert str(info.value) == f"expected a text fragment for {part}, got binary"
    assert assembler.state is AssemblerState.FAILED


def test_text_where_binary_is_due() -> None:
    assembler = at_state(AssemblerState.BUFFER_PAYLOAD)
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed("payload")
    assert str(info.value) == "expected a binary fragment for the buffer payload 1 of 2, got text"
    assert assembler.state is AssemblerState.FAILED


# -- malformed JSON and headers ---------------------------------------------------


@pytest.mark.parametrize(
    ("state", "part"),
    [
        (AssemblerState.HEADER, "header"),
        (AssemblerState.METADATA, "metadata"),
        (AssemblerState.CONTENT, "content"),
        (AssemblerState.BUFFER_HEADER, "buffer header 1 of 2"),
    ],
)
@pytest.mark.parametrize("bad", ["", "{", "{}}", "nope", "[1,]", "NaN", "[Infinity]", "{'a': 1}"])
def test_malformed_json_in_each_part(state: AssemblerState, part: str, bad: str) -> None:
    assembler = at_state(state)
    with pytest.raises(RemoteProtocolError, match=f"the {part} is not valid JSON"):
        assembler.feed(bad)
    assert assembler.state is AssemblerState.FAILED


def test_absurdly_deep_json_is_a_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="not valid JSON"):
        at_state(AssemblerState.METADATA).feed("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("[]", "must be a JSON object, got list"),
        ('"ACK"', "must be a JSON object, got str"),
        ("null", "must be a JSON object, got NoneType"),
        ('{"msgtype": "ACK"}', "needs a str 'msgid'"),
        ('{"msgid": "p1"}', "needs a str 'msgtype'"),
        ('{"msgid": 1, "msgtype": "ACK"}', "needs a str 'msgid'"),
        ('{"msgid": "p1", "msgtype": null}', "needs a str 'msgtype'"),
        ('{"msgid": "p1", "msgtype": "OK", "reqid": 3}', "'reqid' must be a str"),
        ('{"msgid": "p1", "msgtype": "OK", "reqid": null}', "'reqid' must be a str"),
    ],
)
def test_bad_header(header: str, message: str) -> None:
    assembler = Assembler()
    with pytest.raises(RemoteProtocolError, match=message):
        assembler.feed(header)
    assert assembler.state is AssemblerState.FAILED


@pytest.mark.parametrize(
    "value", ["-1", "1.0", "true", "false", '"2"', "null", "[1]", str(MAX_BUFFERS + 1)]
)
def test_bad_num_buffers(value: str) -> None:
    assembler = Assembler()
    with pytest.raises(RemoteProtocolError, match="'num_buffers' must be an int"):
        assembler.feed('{"msgid": "p1", "msgtype": "PATCH-DOC", "num_buffers": ' + value + "}")


def test_largest_num_buffers_is_accepted() -> None:
    assembler = Assembler()
    assembler.feed(header_with_buffers(MAX_BUFFERS))
    assert assembler.state is AssemblerState.METADATA


@pytest.mark.parametrize(
    ("buffer_header", "message"),
    [
        ('{"id": "a", "extra": 1}', 'must be a JSON object {"id": ...}'),
        ("{}", 'must be a JSON object {"id": ...}'),
        ('{"ID": "a"}', 'must be a JSON object {"id": ...}'),
        ('["id"]', 'must be a JSON object {"id": ...}'),
        ('"a"', 'must be a JSON object {"id": ...}'),
        ('{"id": 1}', "'id' must be a str"),
        ('{"id": null}', "'id' must be a str"),
        ('{"id": ["a"]}', "'id' must be a str"),
    ],
)
def test_malformed_buffer_header(buffer_header: str, message: str) -> None:
    assembler = at_state(AssemblerState.BUFFER_HEADER)
    with pytest.raises(RemoteProtocolError, match="buffer header 1 of 2") as info:
        assembler.feed(buffer_header)
    assert message in str(info.value)
    assert assembler.state is AssemblerState.FAILED


def test_long_values_are_shortened_in_error_messages() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Assembler().feed(json.dumps({"msgid": "x" * 10_000, "msgtype": 5}))
    assert len(str(info.value)) < 200


# -- FAILED is sticky ---------------------------------------------------------------


def test_failed_is_sticky_and_chains_the_original() -> None:
    assembler = Assembler()
    with pytest.raises(RemoteProtocolError) as first:
        assembler.feed(b"binary header")
    valid = encode({"msgid": "1", "msgtype": "OK"}, {}, {})
    for fragment in [*valid, b"x"]:
        with pytest.raises(RemoteProtocolError, match="already failed") as later:
            assembler.feed(as_fragment(fragment))
        assert later.value.__cause__ is first.value
        assert assembler.state is AssemblerState.FAILED
