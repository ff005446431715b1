"""The receive-side websocket frame decoder (transport/frames.py), without a socket."""

from __future__ import annotations

from typing import Any

import pytest

from bokeh_nb_client.exceptions import RemoteProtocolError
from bokeh_nb_client.transport.frames import (
    BIG_FRAME,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameDecoder,
    close_code,
)

Delivered = tuple[int, Any, str, int]


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, first_bits: int = 0, mask: bool = False
) -> bytes:
    """One server frame (unmasked unless ``mask``) as RFC 6455 §5.2 lays it out."""
    first = (0x80 if fin else 0) | first_bits | opcode
    masked = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        header = bytes([first, masked | n])
    elif n < 2**16:
        header = bytes([first, masked | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, masked | 127]) + n.to_bytes(8, "big")
    return header + (b"\0\0\0\0" if mask else b"") + payload


def decoder(max_msg_size: int = 0) -> tuple[FrameDecoder, list[Delivered]]:
    out: list[Delivered] = []
    return FrameDecoder(lambda *message: out.append(message), max_msg_size), out


BIG = bytes(range(256)) * ((BIG_FRAME * 3) // 256 + 1)
STREAM = b"".join(
    [
        frame(OP_TEXT, b'{"msgtype":"ACK"}'),
        frame(OP_BINARY, b"\x00\xff"),
        frame(OP_PING, b"hi"),
        frame(OP_BINARY, BIG),
        frame(OP_TEXT, "é ✓".encode()),
        frame(OP_TEXT, b"x" * (BIG_FRAME + 10)),
        frame(OP_BINARY, b""),
        frame(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye"),
    ]
)
EXPECTED = [
    (OP_TEXT, '{"msgtype":"ACK"}', "", 17),
    (OP_BINARY, b"\x00\xff", "", 2),
    (OP_PING, b"hi", "", 2),
    (OP_BINARY, BIG, "", len(BIG)),
    (OP_TEXT, "é ✓", "", 6),
    (OP_TEXT, "x" * (BIG_FRAME + 10), "", BIG_FRAME + 10),
    (OP_BINARY, b"", "", 0),
    (OP_CLOSE, 1000, "bye", 0),
]


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000, 65_541, len(STREAM)])
def test_fed_in_any_chunks_the_messages_come_out_whole_and_in_order(chunk: int) -> None:
    dec, out = decoder()
    for start in range(0, len(STREAM), chunk):
        dec.feed(STREAM[start : start + chunk])
    assert out == EXPECTED


@pytest.mark.parametrize("read_size", [1, 5, 4096, 10**9])
def test_buffered_reads_give_the_same_messages(read_size: int) -> None:
    dec, out = decoder()
    pos = 0
    while pos < len(STREAM):
        view = dec.get_buffer(-1)
        n = min(len(view), read_size, len(STREAM) - pos)
        view[:n] = STREAM[pos : pos + n]
        dec.buffer_updated(n)
        pos += n
    assert out == EXPECTED


def test_a_big_binary_payload_is_read_in_place_and_handed_over_writable() -> None:
    dec, out = decoder()
    head = frame(OP_BINARY, BIG)[:20]  # header (10 bytes) and the first 10 payload bytes
    dec.feed(head)
    view = dec.get_buffer(-1)
    assert len(view) == len(BIG) - 10  # the socket writes straight into the payload
    view[:] = BIG[10:]
    dec.buffer_updated(len(view))
    [(opcode, payload, _, size)] = out
    assert opcode == OP_BINARY and size == len(BIG)
    assert isinstance(payload, memoryview) and not payload.readonly
    assert payload.obj is view.obj  # the very buffer the socket filled: no copy
    assert payload == BIG


def test_small_binary_payloads_are_bytes() -> None:
    dec, out = decoder()
    dec.feed(frame(OP_BINARY, b"abc"))
    assert type(out[0][1]) is bytes


def test_continuation_frames_are_joined_around_a_control_frame() -> None:
    dec, out = decoder()
    dec.feed(frame(OP_TEXT, b"he", fin=False))
    dec.feed(frame(OP_PING, b""))
    dec.feed(frame(0, b"ll", fin=False) + frame(0, b"o"))
    dec.feed(frame(OP_BINARY, BIG[:BIG_FRAME], fin=False) + frame(0, BIG[BIG_FRAME:]))
    assert out == [
        (OP_PING, b"", "", 0),
        (OP_TEXT, "hello", "", 5),
        (OP_BINARY, BIG, "", len(BIG)),
    ]


def test_close_frame_without_a_code() -> None:
    dec, out = decoder()
    dec.feed(frame(OP_CLOSE, b""))
    assert out == [(OP_CLOSE, 0, "", 0)]


@pytest.mark.parametrize(
    ("data", "code", "match"),
    [
        (frame(OP_TEXT, b"x", mask=True), 1002, "masked"),
        (frame(OP_TEXT, b"x", first_bits=0x40), 1002, "reserved bits"),
        (frame(0x3, b"x"), 1002, "opcode"),
        (frame(0, b"x"), 1002, "Continuation frame for non started"),
        (frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), 1002, "expected to be zero"),
        (frame(OP_PING, b"x", fin=False), 1002, "fragmented control"),
        (frame(OP_PING, b"x" * 126), 1002, "125 bytes"),
        (frame(OP_TEXT, b"\xff\xfe"), 1007, "UTF-8"),
        (frame(OP_CLOSE, (1004).to_bytes(2, "big")), 1002, "close code"),
        (frame(OP_CLOSE, b"\x03"), 1002, "close frame"),
        (frame(OP_BINARY, b"x" * 100), 1009, "exceeds limit 100"),
        (frame(OP_TEXT, b"x" * 60, fin=False) + frame(0, b"x" * 60), 1009, "120 exceeds"),
    ],
)
def test_protocol_violations_fail_the_decoder_with_a_close_code(
    data: bytes, code: int, match: str
) -> None:
    dec, out = decoder(max_msg_size=100)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        dec.feed(data)
    assert close_code(info.value) == code
    assert dec.failed
    dec.feed(frame(OP_TEXT, b"ignored"))  # nothing after an error is trusted
    assert all(message[1] != "ignored" for message in out)


def test_size_limit_matches_aiohttp() -> None:
    # aiohttp refuses a message whose length reaches max_msg_size; so do we.
    dec, out = decoder(max_msg_size=101)
    dec.feed(frame(OP_BINARY, b"x" * 100))
    assert out[0][3] == 100


def test_a_frame_too_large_to_allocate_fails_with_message_too_big() -> None:
    # No limit set, and a server announcing an absurd length: refused, not raised raw.
    dec, out = decoder(max_msg_size=0)
    header = bytes([0x80 | OP_BINARY, 127]) + (2**62).to_bytes(8, "big")
    with pytest.raises(RemoteProtocolError, match="cannot allocate") as info:
        dec.feed(header)
    assert close_code(info.value) == 1009
    assert dec.failed and out == []
