"""Bokeh message framing: one Bokeh message as a sequence of websocket fragments.

A Bokeh message travels as three text fragments (header, metadata, content, each
JSON) followed by ``num_buffers`` pairs of a text buffer header ``{"id": ...}`` and
a binary payload (PROTOCOL.md §2). This module turns a message into that fragment
list (:func:`encode`) and a stream of received fragments back into messages
(:class:`Assembler`).

Invariants:

* Everything here is synchronous and does no I/O; the caller writes and reads the
  websocket and must write the fragments of one message without interleaving
  them with another message's (hold a lock, or use a single writer).
* The :class:`Assembler` validates each fragment as soon as it arrives, earlier
  and more strictly than bokeh's own ``Receiver``. The first violation raises
  :class:`~bokeh_nb_client.exceptions.RemoteProtocolError` and the assembler stays
  failed for good: nothing after a framing error can be trusted, so the caller
  must close the connection (bokeh itself uses close code 10001 for this).
* A :class:`WireMessage` produced by the assembler always has a header with a str
  ``msgid`` and ``msgtype``, and exactly as many buffers as its ``num_buffers``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn, TypeAlias

from ..exceptions import RemoteProtocolError

__all__ = [
    "MAX_BUFFERS",
    "Assembler",
    "AssemblerState",
    "BinaryPayload",
    "Fragment",
    "JsonText",
    "OutFragment",
    "WireMessage",
    "encode",
]

Fragment: TypeAlias = str | bytes | memoryview
"""One received websocket message: ``str`` for a text frame, ``bytes`` or a
``memoryview`` for binary. A received ``memoryview`` is handed over: the transport
keeps no reference to it, and the buffers of a :class:`WireMessage` share its
memory (no copy), so decoded arrays may too."""

BinaryPayload: TypeAlias = bytes | memoryview
"""A received binary payload (see :data:`Fragment`)."""

OutFragment: TypeAlias = str | bytes | memoryview
"""One websocket message to send. A ``memoryview`` is a binary frame; it is passed
through from the caller's buffer so that large payloads are not copied."""

MAX_BUFFERS = 100_000
"""The largest ``num_buffers`` the assembler accepts in a header. A real message has
one buffer per binary array; anything near this is a corrupt or hostile header."""

# Compact output, as bokeh's serialize_json; NaN and infinities are not JSON.
_DUMPS_OPTIONS: dict[str, Any] = {"separators": (",", ":"), "allow_nan": False}


class JsonText(str):
    """A value that already is JSON text.

    Pass it as the ``content`` (or ``metadata``) of :func:`encode` to have it written
    verbatim, for example content that bokeh's own serializer produced. The caller
    is responsible for it being valid JSON; it is not checked.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One complete Bokeh message, as it was on the wire.

    The content is plain parsed JSON; what it means for a document is not this
    module's concern. Instances are immutable, but ``header``, ``metadata`` and
    ``content`` are ordinary (mutable) JSON values: do not modify them in place.

    Attributes:
        header: the parsed header object (``msgid``, ``msgtype``, optional ``reqid``
            and ``num_buffers``).
        metadata: the parsed metadata (bokeh always sends ``{}``).
        content: the parsed content.
        buffers: ``(id, payload)`` pairs in the order they arrived; a payload is
            ``bytes`` or a ``memoryview`` the transport handed over (writable when
            the transport made it so).
    """

    header: dict[str, Any]
    metadata: Any
    content: Any
    buffers: tuple[tuple[str, BinaryPayload], ...] = ()

    @property
    def msgtype(self) -> str:
        """The ``msgtype`` header field (raises ``KeyError`` on a hand-built header
        without one)."""
        msgtype: str = self.header["msgtype"]
        return msgtype

    @property
    def msgid(self) -> str:
        """The ``msgid`` header field (raises ``KeyError`` if absent)."""
        msgid: str = self.header["msgid"]
        return msgid

    @property
    def reqid(self) -> str | None:
        """The ``reqid`` header field: the msgid of the request this replies to, or
        None for a message that is not a reply."""
        reqid: str | None = self.header.get("reqid")
        return reqid

    @property
    def num_buffers(self) -> int:
        """The number of buffers carried (equal to the header's ``num_buffers``, or 0
        when absent, for every message the :class:`Assembler` produces)."""
        return len(self.buffers)


def encode(
    header: Mapping[str, Any],
    metadata: Any,
    content: Any,
    buffers: Sequence[tuple[str, bytes | memoryview]] = (),
) -> list[OutFragment]:
    """Encode one Bokeh message as the exact list of websocket fragments to send.

    The list is: header, metadata and content as compact JSON text, then for each
    buffer a text ``{"id": ...}`` and the binary payload. Send them in order, without
    interleaving another message's fragments.

    Args:
        header: must hold a str ``msgid`` and ``msgtype``. When ``buffers`` is not
            empty, the written header carries ``num_buffers = len(buffers)``; the
            given mapping is not modified.
        metadata: any JSON-compatible value (bokeh sends ``{}``), or a
            :class:`JsonText` written verbatim.
        content: any JSON-compatible value, or a :class:`JsonText` written verbatim.
        buffers: ``(id, payload)`` pairs. A ``bytes`` payload is sent as is; any
            other buffer is sent as a zero-copy ``memoryview`` of bytes when it is
            contiguous (so the caller must not modify it until it has been
            written) and copied otherwise.

    Returns:
        The fragments: ``str`` for text frames, ``bytes`` or ``memoryview`` for
        binary frames.

    Raises:
        ValueError: the header lacks a str ``msgid``/``msgtype``, its ``num_buffers``
            disagrees with ``len(buffers)``, or a value is NaN or infinite (JSON has
            no such numbers; bokeh encodes them as ``{"type":"number",...}``).
        TypeError: a value is not JSON-serializable, or a buffer id is not a str.
    """
    written = dict(header)
    for key in ("msgid", "msgtype"):
        if not isinstance(written.get(key), str):
            raise ValueError(f"a message header needs a str {key!r}, got {written.get(key)!r}")
    if "num_buffers" in written:
        declared = written["num_buffers"]
        if type(declared) is not int or declared != len(buffers):
            raise ValueError(
                f"header says num_buffers={declared!r} but {len(buffers)} buffers were given"
            )
    if buffers:
        written["num_buffers"] = len(buffers)

    fragments: list[OutFragment] = [
        json.dumps(written, **_DUMPS_OPTIONS),
        _dump(metadata),
        _dump(content),
    ]
    for buffer_id, payload in buffers:
        if not isinstance(buffer_id, str):
            raise TypeError(f"a buffer id must be a str, got {type(buffer_id).__name__}")
        fragments.append(json.dumps({"id": buffer_id}, **_DUMPS_OPTIONS))
        fragments.append(_binary(payload))
    return fragments


def _dump(value: Any) -> str:
    if isinstance(value, JsonText):
        return str.__str__(value)
    return json.dumps(value, **_DUMPS_OPTIONS)


def _binary(payload: bytes | memoryview) -> bytes | memoryview:
    if isinstance(payload, bytes):
        return payload
    view = memoryview(payload)
    if not view.c_contiguous:
        return view.tobytes()
    if view.ndim != 1 or view.format != "B":
        # websocket libraries write len(view) items; make that the byte count.
        view = view.cast("B")
    return view


class AssemblerState(Enum):
    """Which fragment the :class:`Assembler` expects next (FAILED: none ever again)."""

    HEADER = "header"
    METADATA = "metadata"
    CONTENT = "content"
    BUFFER_HEADER = "buffer header"
    BUFFER_PAYLOAD = "buffer payload"
    FAILED = "failed"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


# Python's json module accepts NaN/Infinity by default; strict JSON does not.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _short(value: Any) -> str:
    """A repr fit for an error message: received values can be arbitrarily large."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Assembler:
    """Reassemble received fragments into :class:`WireMessage` values.

    Feed every websocket message of the connection, in order, to :meth:`feed`.
    Checks, each made as soon as the fragment arrives:

    * header, metadata, content and buffer headers are text; payloads are binary;
    * every text fragment is strict JSON (no NaN or Infinity);
    * the header is an object with a str ``msgid`` and ``msgtype``, an optional str
      ``reqid`` and an optional int ``num_buffers`` in ``0..MAX_BUFFERS``;
    * a buffer header is an object whose only key is ``id``, with a str value.

    A message is complete when its content has arrived and it holds
    ``num_buffers`` buffers; the next fragment then starts a new message.
    The msgtype is not checked here (that is the state machine's job).
    """

    __slots__ = (
        "_buffer_id",
        "_buffers",
        "_content",
        "_failure",
        "_header",
        "_metadata",
        "_num_buffers",
        "_state",
    )

    def __init__(self) -> None:
        self._state = AssemblerState.HEADER
        self._failure: RemoteProtocolError | None = None
        self._header: dict[str, Any] = {}
        self._metadata: Any = None
        self._content: Any = None
        self._num_buffers = 0
        self._buffers: list[tuple[str, BinaryPayload]] = []
        self._buffer_id = ""

    @property
    def state(self) -> AssemblerState:
        """The part expected next, or FAILED after a violation."""
        return self._state

    def feed(self, fragment: Fragment) -> WireMessage | None:
        """Consume the next received fragment.

        Args:
            fragment: a text frame as ``str`` or a binary frame as ``bytes`` or
                ``memoryview`` (kept as is, not copied); a ``bytearray`` is copied.

        Returns:
            The message this fragment completed, or None if it is still partial.

        Raises:
            RemoteProtocolError: the fragment breaks the framing rules; its message
                names the part that was expected. The assembler is then FAILED and
                every later call raises RemoteProtocolError too (chained to the
                original error). Close the connection.
            TypeError: ``fragment`` is neither text nor binary (a bug in the caller;
                the state is unchanged).
        """
        if self._state is AssemblerState.FAILED:
            raise RemoteProtocolError(
                f"the fragment stream already failed ({self._failure}); "
                "no further fragments can be assembled"
            ) from self._failure
        if isinstance(fragment, memoryview):
            if fragment.ndim != 1 or fragment.format != "B":
                fragment = fragment.cast("B")
        elif isinstance(fragment, bytearray):
            fragment = bytes(fragment)
        elif not isinstance(fragment, str | bytes):
            raise TypeError(f"a fragment must be str or bytes, got {type(fragment).__name__}")
        try:
            return self._consume(fragment)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: RemoteProtocolError) -> None:
        self._state = AssemblerState.FAILED
        self._failure = exc
        self._header = {}
        self._metadata = self._content = None
        self._buffers = []

    def _consume(self, fragment: Fragment) -> WireMessage | None:
        state = self._state
        if state is AssemblerState.BUFFER_PAYLOAD:
            if isinstance(fragment, str):
                raise RemoteProtocolError(
                    f"expected a binary fragment for the {self._buffer_part()}, got text"
                )
            self._buffers.append((self._buffer_id, fragment))
            return self._maybe_complete()

        if not isinstance(fragment, str):
            part = self._buffer_part() if state is AssemblerState.BUFFER_HEADER else state.value
            raise RemoteProtocolError(f"expected a text fragment for the {part}, got binary")

        if state is AssemblerState.HEADER:
            self._header = self._parse_header(fragment)
            self._state = AssemblerState.METADATA
        elif state is AssemblerState.METADATA:
            self._metadata = self._parse_json(fragment, "metadata")
            self._state = AssemblerState.CONTENT
        elif state is AssemblerState.CONTENT:
            self._content = self._parse_json(fragment, "content")
            return self._maybe_complete()
        else:  # BUFFER_HEADER
            self._buffer_id = self._parse_buffer_header(fragment)
            self._state = AssemblerState.BUFFER_PAYLOAD
        return None

    def _maybe_complete(self) -> WireMessage | None:
        if len(self._buffers) < self._num_buffers:
            self._state = AssemblerState.BUFFER_HEADER
            return None
        message = WireMessage(self._header, self._metadata, self._content, tuple(self._buffers))
        self._header = {}
        self._metadata = self._content = None
        self._buffers = []
        self._num_buffers = 0
        self._state = AssemblerState.HEADER
        return message

    def _buffer_part(self) -> str:
        number = len(self._buffers) + 1
        return f"{self._state.value} {number} of {self._num_buffers}"

    def _parse_json(self, text: str, part: str) -> Any:
        try:
            return _DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            # RecursionError: absurdly deep nesting exhausts the C scanner's stack.
            raise RemoteProtocolError(f"the {part} is not valid JSON: {exc}") from exc

    def _parse_header(self, text: str) -> dict[str, Any]:
        header = self._parse_json(text, "header")
        if not isinstance(header, dict):
            raise RemoteProtocolError(
                f"the header must be a JSON object, got {type(header).__name__}"
            )
        for key in ("msgid", "msgtype"):
            if not isinstance(header.get(key), str):
                raise RemoteProtocolError(
                    f"the header needs a str {key!r}, got {_short(header.get(key))}"
                )
        if "reqid" in header and not isinstance(header["reqid"], str):
            raise RemoteProtocolError(
                f"the header's 'reqid' must be a str, got {_short(header['reqid'])}"
            )
        num_buffers = header.get("num_buffers", 0)
        # type() rather than isinstance(): JSON true must not count as 1.
        if type(num_buffers) is not int or not 0 <= num_buffers <= MAX_BUFFERS:
            raise RemoteProtocolError(
                "the header's 'num_buffers' must be an int from 0 to "
                f"{MAX_BUFFERS}, got {_short(num_buffers)}"
            )
        self._num_buffers = num_buffers
        return header

    def _parse_buffer_header(self, text: str) -> str:
        part = self._buffer_part()
        header = self._parse_json(text, part)
        if not isinstance(header, dict) or set(header) != {"id"}:
            raise RemoteProtocolError(
                f'the {part} must be a JSON object {{"id": ...}}, got {_short(header)}'
            )
        buffer_id = header["id"]
        if not isinstance(buffer_id, str):
            raise RemoteProtocolError(f"the {part}'s 'id' must be a str, got {_short(buffer_id)}")
        return buffer_id
