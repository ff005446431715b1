"""Properties of the framing: encode then assemble is the identity, and no corruption
of a fragment stream raises anything but RemoteProtocolError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bokeh_nb_client.exceptions import RemoteProtocolError
from bokeh_nb_client.protocol import ClientProtocol, MsgType, State
from bokeh_nb_client.protocol.wire import Assembler, AssemblerState, Fragment, WireMessage, encode

EXAMPLES = settings(max_examples=200, deadline=None)

short_text = st.text(max_size=8)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(short_text, children, max_size=3)
    ),
    max_leaves=6,
)
headers = st.fixed_dictionaries(
    {"msgid": short_text, "msgtype": short_text},
    optional={"reqid": short_text},
).flatmap(
    lambda fixed: st.dictionaries(
        st.sampled_from(["x", "revision", "é", ""]), json_values, max_size=2
    ).map(lambda extra: {**extra, **fixed})
)
buffer_lists = st.lists(st.tuples(short_text, st.binary(max_size=32)), max_size=4)


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], Any, Any, list[tuple[str, bytes]]]:
    return draw(headers), draw(json_values), draw(json_values), draw(buffer_lists)


def fragments_of(
    message: tuple[dict[str, Any], Any, Any, list[tuple[str, bytes]]],
) -> list[Fragment]:
    header, metadata, content, buffers = message
    return [
        bytes(f) if isinstance(f, memoryview) else f
        for f in encode(header, metadata, content, buffers)
    ]


def expected(message: tuple[dict[str, Any], Any, Any, list[tuple[str, bytes]]]) -> WireMessage:
    header, metadata, content, buffers = message
    if buffers:
        header = {**header, "num_buffers": len(buffers)}
    return WireMessage(header, metadata, content, tuple(buffers))


@EXAMPLES
@given(st.lists(messages(), min_size=1, max_size=3))
def test_encode_then_assemble_is_identity(batch: list[Any]) -> None:
    assembler = Assembler()
    received = []
    for message in batch:
        for fragment in fragments_of(message):
            result = assembler.feed(fragment)
            if result is not None:
                received.append(result)
    assert received == [expected(message) for message in batch]
    assert assembler.state is AssemblerState.HEADER


# -- corruption ------------------------------------------------------------------

random_fragments = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from(
        [
            "{}",
            "[]",
            "null",
            '{"id": "x"}',
            '{"id": 1}',
            '{"msgid": "p1", "msgtype": "OK"}',
            '{"msgid": "p1", "msgtype": "PATCH-DOC", "num_buffers": 2}',
            '{"msgid": "p1", "msgtype": "PATCH-DOC", "num_buffers": 1e9}',
            "NaN",
            "[" * 5000,
        ]
    ),
)


@st.composite
def corruptions(draw: st.DrawFn, stream: list[Fragment]) -> list[Fragment]:
    """Apply 1 to 4 random corruptions to ``stream``."""
    stream = list(stream)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "swap", "truncate", "flip", "insert"]))
        if not stream:
            kind = "insert"
        index = draw(st.integers(0, max(len(stream) - 1, 0)))
        if kind == "insert":
            stream.insert(draw(st.integers(0, len(stream))), draw(random_fragments))
            continue
        fragment = stream[index]
        if kind == "drop":
            del stream[index]
        elif kind == "duplicate":
            stream.insert(index, fragment)
        elif kind == "swap":
            swapped: Fragment
            if isinstance(fragment, str):
                swapped = fragment.encode("utf-8", "surrogatepass")
            else:
                swapped = fragment.decode("latin-1")
            stream[index] = swapped
        elif isinstance(fragment, str):
            raw = bytearray(fragment.encode("utf-8", "surrogatepass"))
            if kind == "truncate":
                raw = raw[: draw(st.integers(0, len(raw)))]
            elif raw:
                position = draw(st.integers(0, len(raw) - 1))
                raw[position] ^= 1 << draw(st.integers(0, 7))
            stream[index] = raw.decode("utf-8", "replace")
        else:  # truncate or flip a binary payload: any bytes are a valid payload
            stream[index] = fragment[: len(fragment) // 2]
    return stream


@st.composite
def corrupted_streams(draw: st.DrawFn) -> list[Fragment]:
    batch = draw(st.lists(messages(), min_size=1, max_size=3))
    stream = [fragment for message in batch for fragment in fragments_of(message)]
    return draw(corruptions(stream))


@EXAMPLES
@given(corrupted_streams())
def test_corrupted_stream_raises_only_remote_protocol_error(stream: list[Fragment]) -> None:
    assembler = Assembler()
    failed = False
    for fragment in stream:
        try:
            message = assembler.feed(fragment)
        except RemoteProtocolError:
            failed = True
            assert assembler.state is AssemblerState.FAILED
        else:
            assert not failed, "a failed assembler must keep failing"
            if message is not None:
                assert isinstance(message.msgid, str)
                assert isinstance(message.msgtype, str)
                assert len(message.buffers) == message.header.get("num_buffers", 0)


@st.composite
def corrupted_server_streams(draw: st.DrawFn) -> list[Fragment]:
    """An ACK, replies to c1..c3 and patches, then corrupted."""
    content = st.dictionaries(short_text, json_values, max_size=2)
    stream = fragments_of(({"msgid": "p0", "msgtype": "ACK"}, {}, {}, []))
    for number in range(1, 4):
        reply = draw(st.sampled_from(["OK", "PULL-DOC-REPLY", "ERROR", "SERVER-INFO-REPLY"]))
        header = {"msgid": f"p{number}", "msgtype": reply, "reqid": f"c{number}"}
        stream += fragments_of((header, {}, draw(content), draw(buffer_lists)))
        patch = {"msgid": f"q{number}", "msgtype": "PATCH-DOC"}
        stream += fragments_of((patch, {}, draw(content), draw(buffer_lists)))
    return draw(corruptions(stream))


@EXAMPLES
@given(corrupted_server_streams())
def test_machine_raises_only_remote_protocol_error(stream: list[Fragment]) -> None:
    protocol = ClientProtocol()
    for fragment in stream:
        if protocol.state is State.OPEN and not protocol.pending:
            for request in (MsgType.PULL_DOC_REQ, MsgType.PATCH_DOC, MsgType.SERVER_INFO_REQ):
                protocol.send_request(request, {})
        try:
            protocol.receive_fragment(fragment)
        except RemoteProtocolError:
            assert protocol.failure is not None
            assert protocol.state is State.CLOSED
            break
