"""Websocket frame decoding for the receive side of a client (RFC 6455 §5), sans I/O.

Why our own decoder: aiohttp's reader keeps every socket read of a large frame
as a separate ``bytes`` slice and joins them when the frame ends, so a 16 MB
buffer costs two extra copies and a transient second 16 MB (bench/README.md,
"Receive path"). Bokeh sends every array as one binary websocket message, and
its header says how long it is. :class:`FrameDecoder` allocates the payload
buffer once, at that size, and copies each read into place; with
:meth:`FrameDecoder.get_buffer` / :meth:`FrameDecoder.buffer_updated` (asyncio's
``BufferedProtocol``) the kernel writes straight into it and there is no copy
on our side at all.

Large binary payloads are delivered as a writable ``memoryview`` of a buffer
nobody else holds (an anonymous memory map from 1 MiB on, a ``bytearray``
below): arrays decoded from it can share its memory (``_arrays.py``).
Everything else is delivered as ``bytes``/``str``.

Invariants:

* Messages are delivered in order, whole (continuation frames are joined).
* After the first error (``RemoteProtocolError``; :func:`close_code` gives the
  close code to answer with) the decoder is failed for good and
  ignores further input.
* Frames from a server must not be masked; compression (RSV1) is never
  negotiated by this client, so any RSV bit is an error.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any

from ..exceptions import RemoteProtocolError

__all__ = [
    "BIG_FRAME",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameDecoder",
    "close_code",
]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_DATA_OPS = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
_CONTROL_OPS = frozenset({OP_CLOSE, OP_PING, OP_PONG})

#: Payloads from this size on are received into a buffer of their own.
BIG_FRAME = 64 * 1024
#: The buffer handed to the socket between large payloads.
SCRATCH_SIZE = 256 * 1024

# Close codes (RFC 6455 §7.4.1) used for our errors.
PROTOCOL_ERROR = 1002
INVALID_TEXT = 1007
MESSAGE_TOO_BIG = 1009
#: Codes below 3000 a peer may send (the ones RFC 6455 defines, as aiohttp accepts).
_ALLOWED_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)

Deliver = Callable[[int, Any, str, int], None]
"""``deliver(opcode, data, extra, size)``: one whole message or control frame.

TEXT: ``data`` is the str; BINARY: bytes or a writable memoryview; CLOSE: ``data``
is the close code (0 when none) and ``extra`` the reason; PING/PONG: the payload."""


#: Payloads from this size on get a memory map of their own.
MAPPED_PAYLOAD = 1024 * 1024


_MAP_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)


def _payload_buffer(length: int) -> memoryview:
    """Writable memory for one payload, that nothing else will ever hold.

    Large payloads get an anonymous mapping of their own, populated at once
    (``MAP_POPULATE`` on Linux: the kernel zeroes and maps every page in one
    call instead of taking a fault per 4 KiB page as the socket read first
    touches it), and the memory goes back to the system as soon as the last
    array viewing it is gone. Measured in fresh processes pulling 32 MB
    (bench/README.md): populated map 0.032 s of CPU, lazy map 0.041 s, numpy's
    allocator (transparent huge pages) 0.062 s.
    """
    if length >= MAPPED_PAYLOAD:
        return memoryview(mmap.mmap(-1, length, flags=_MAP_FLAGS))
    return memoryview(bytearray(length))


def _error(code: int, text: str) -> RemoteProtocolError:
    error = RemoteProtocolError(text)
    error.close_code = code  # type: ignore[attr-defined]
    return error


def close_code(error: RemoteProtocolError) -> int:
    """The websocket close code that answers a decoding error (1002 if unknown)."""
    code: int = getattr(error, "close_code", PROTOCOL_ERROR)
    return code


class FrameDecoder:
    """Turn the bytes of a server-to-client websocket stream into messages.

    Feed bytes with :meth:`feed`, or let the socket write into
    :meth:`get_buffer` and report with :meth:`buffer_updated`; both may be mixed.
    Each complete message goes to ``deliver``. ``max_msg_size`` (0: no limit)
    bounds one message, as aiohttp's ``max_msg_size`` does.
    """

    __slots__ = (
        "_big",
        "_big_end",
        "_big_fin",
        "_big_opcode",
        "_big_pos",
        "_deliver",
        "_failed",
        "_frag_opcode",
        "_frag_parts",
        "_frag_size",
        "_max_msg_size",
        "_scratch",
        "_tail",
        "big_frame",
    )

    def __init__(self, deliver: Deliver, max_msg_size: int, *, big_frame: int = BIG_FRAME) -> None:
        self._deliver = deliver
        self._max_msg_size = max_msg_size
        self.big_frame = big_frame
        self._tail = b""
        self._big: memoryview | None = None
        self._big_pos = 0
        self._big_end = 0
        self._big_opcode = 0
        self._big_fin = True
        self._frag_opcode = -1  # the opcode of a fragmented message in progress
        self._frag_parts: list[bytes | memoryview] = []
        self._frag_size = 0
        self._scratch: memoryview | None = None
        self._failed = False

    @property
    def failed(self) -> bool:
        """True after an error: every later input is ignored."""
        return self._failed

    # -- BufferedProtocol side -------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the next socket read should go.

        Inside a large payload: the rest of that payload's own buffer (the kernel
        copies straight into place). Otherwise a reused scratch buffer.
        """
        big = self._big
        if big is not None and not self._tail and not self._failed:
            return big[self._big_pos : self._big_end]
        if self._scratch is None:
            self._scratch = memoryview(bytearray(SCRATCH_SIZE))
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written into the last :meth:`get_buffer` view.

        Raises:
            RemoteProtocolError: the data breaks the protocol (the decoder is now failed).
        """
        if self._failed:
            return
        big = self._big
        if big is not None and not self._tail:
            self._big_pos += nbytes
            if self._big_pos == self._big_end:
                self._finish_big()
            return
        assert self._scratch is not None
        self.feed(self._scratch[:nbytes])

    # -- data_received side ------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Consume the next bytes of the stream (copied out as needed; not kept).

        Raises:
            RemoteProtocolError: the data breaks the protocol (the decoder is now failed).
        """
        if self._failed:
            return
        try:
            self._feed(data)
        except RemoteProtocolError:
            self._fail()
            raise

    def _fail(self) -> None:
        self._failed = True
        self._tail = b""
        self._big = None
        self._frag_parts = []

    def _feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._tail:
            data = self._tail + bytes(data)
            self._tail = b""
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        pos = 0
        end = len(view)
        while pos < end:
            big = self._big
            if big is not None:
                take = min(self._big_end - self._big_pos, end - pos)
                big[self._big_pos : self._big_pos + take] = view[pos : pos + take]
                self._big_pos += take
                pos += take
                if self._big_pos == self._big_end:
                    self._finish_big()
                continue
            header = self._header(view, pos, end)
            if header is None:
                break
            header_len, fin, opcode, length = header
            start = pos + header_len
            if length >= self.big_frame and opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                self._start_big(opcode, fin, length)
                pos = start
                continue
            if end - start < length:
                break  # a small frame not complete yet: keep it in the tail
            payload = bytes(view[start : start + length])
            pos = start + length
            self._frame(fin, opcode, payload)
            if self._failed:
                return
        if pos < end:
            self._tail = bytes(view[pos:end])

    def _header(self, view: memoryview, pos: int, end: int) -> tuple[int, bool, int, int] | None:
        """Parse the frame header at ``pos``: (header length, fin, opcode, payload length)."""
        if end - pos < 2:
            return None
        first = view[pos]
        second = view[pos + 1]
        length = second & 0x7F
        header_len = 2
        if length == 126:
            header_len = 4
            if end - pos < header_len:
                return None
            length = int.from_bytes(view[pos + 2 : pos + 4], "big")
        elif length == 127:
            header_len = 10
            if end - pos < header_len:
                return None
            length = int.from_bytes(view[pos + 2 : pos + 10], "big")
            if length >> 63:
                raise _error(PROTOCOL_ERROR, "frame length has the most significant bit set")
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        if first & 0x70:
            raise _error(PROTOCOL_ERROR, "Received frame with non-zero reserved bits")
        if second & 0x80:
            raise _error(PROTOCOL_ERROR, "Received a masked frame from the server")
        if opcode in _CONTROL_OPS:
            if not fin:
                raise _error(PROTOCOL_ERROR, "Received fragmented control frame")
            if length > 125:
                raise _error(
                    PROTOCOL_ERROR, "Control frame payload cannot be larger than 125 bytes"
                )
        elif opcode not in _DATA_OPS:
            raise _error(PROTOCOL_ERROR, f"Unexpected opcode={opcode!r}")
        elif self._max_msg_size:
            partial = self._frag_size
            if length >= self._max_msg_size - partial:
                raise _error(
                    MESSAGE_TOO_BIG,
                    f"Message size {length + partial} exceeds limit {self._max_msg_size}",
                )
        return header_len, fin, opcode, length

    def _start_big(self, opcode: int, fin: bool, length: int) -> None:
        try:
            self._big = _payload_buffer(length)
        except (OSError, OverflowError, MemoryError) as exc:
            raise _error(
                MESSAGE_TOO_BIG, f"cannot allocate a buffer for a {length}-byte message: {exc}"
            ) from exc
        self._big_pos = 0
        self._big_end = length
        self._big_opcode = opcode
        self._big_fin = fin

    def _finish_big(self) -> None:
        payload = self._big
        assert payload is not None
        self._big = None
        try:
            self._frame(self._big_fin, self._big_opcode, payload)
        except RemoteProtocolError:
            self._fail()
            raise

    def _frame(self, fin: bool, opcode: int, payload: bytes | memoryview) -> None:
        deliver = self._deliver
        if opcode >= OP_CLOSE:
            self._control(opcode, bytes(payload))
            return
        if opcode == OP_CONTINUATION:
            if self._frag_opcode < 0:
                raise _error(PROTOCOL_ERROR, "Continuation frame for non started message")
            self._frag_parts.append(payload)
            self._frag_size += len(payload)
            if not fin:
                return
            opcode = self._frag_opcode
            payload = b"".join(self._frag_parts)
            self._frag_opcode = -1
            self._frag_parts = []
            self._frag_size = 0
        elif self._frag_opcode >= 0:
            raise _error(
                PROTOCOL_ERROR,
                f"The opcode in non-fin frame is expected to be zero, got {opcode!r}",
            )
        elif not fin:
            self._frag_opcode = opcode
            self._frag_parts = [payload]
            self._frag_size = len(payload)
            return
        size = len(payload)
        if opcode == OP_TEXT:
            try:
                text = str(payload, "utf-8")
            except UnicodeDecodeError as exc:
                raise _error(INVALID_TEXT, "Invalid UTF-8 text message") from exc
            deliver(OP_TEXT, text, "", size)
        else:
            deliver(OP_BINARY, payload, "", size)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_CLOSE:
            if len(payload) >= 2:
                code = int.from_bytes(payload[:2], "big")
                if code < 3000 and code not in _ALLOWED_CLOSE_CODES:
                    raise _error(PROTOCOL_ERROR, f"Invalid close code: {code}")
                try:
                    reason = payload[2:].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _error(INVALID_TEXT, "Invalid UTF-8 text message") from exc
                self._deliver(OP_CLOSE, code, reason, 0)
            elif payload:
                raise _error(PROTOCOL_ERROR, f"Invalid close frame: {payload!r}")
            else:
                self._deliver(OP_CLOSE, 0, "", 0)
        else:
            self._deliver(opcode, payload, "", len(payload))
