"""Hypothesis strategies for hostile server traffic: mutated valid fragment sequences.

A *script* is what a server sends, as two lists of fragments (``str`` is a text
frame, ``bytes`` a binary one): ``pre``, the part before the client may speak
(a valid ACK, mutated), and ``post``, the replies to the client's requests and
unsolicited messages (valid ones, mutated). Mutations are the ways traffic goes
wrong: truncation, dropped, duplicated, reordered or inserted fragments, text and
binary swapped, characters flipped inside JSON, header fields rewritten.

The client under test sends, once it has the ACK, exactly the requests of
:data:`REQUESTS` in that order, so ids ``c1``... exist for the replies to match.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from bokeh_nb_client.protocol import MsgType, encode

__all__ = ["REQUESTS", "Fragment", "post_messages", "scripts"]

Fragment = str | bytes

REQUESTS: tuple[MsgType, ...] = (
    MsgType.SERVER_INFO_REQ,
    MsgType.PULL_DOC_REQ,
    MsgType.PATCH_DOC,
    MsgType.PUSH_DOC,
)
"""What the client sends after ACK; their msgids are c1, c2, c3, c4."""


def _plain(fragments: list[Any]) -> list[Fragment]:
    return [f if isinstance(f, str) else bytes(f) for f in fragments]


def _msg(
    msgtype: str,
    content: Any = None,
    *,
    msgid: str,
    reqid: str | None = None,
    buffers: list[tuple[str, bytes]] | None = None,
) -> list[Fragment]:
    header: dict[str, Any] = {"msgid": msgid, "msgtype": msgtype}
    if reqid is not None:
        header["reqid"] = reqid
    return _plain(encode(header, {}, {} if content is None else content, buffers or []))


ACK = _msg("ACK", msgid="s1")

_ARRAY = {
    "type": "ndarray",
    "array": {"type": "bytes", "data": {"id": "b1"}},
    "shape": [2],
    "dtype": "float64",
    "order": "little",
}


def post_messages() -> list[list[Fragment]]:
    """Valid server messages for the requests of :data:`REQUESTS`, plus patches."""
    return [list(message) for message in _POST]


def _post() -> list[list[Fragment]]:
    payload = b"\x00" * 16
    return [
        _msg(
            "SERVER-INFO-REPLY",
            {"version_info": {"bokeh": "3.9.2", "server": "3.9.2"}},
            msgid="s2",
            reqid="c1",
        ),
        _msg(
            "PATCH-DOC",
            {"events": [{"kind": "TitleChanged", "title": "t"}]},
            msgid="s3",
            buffers=[],
        ),
        _msg(
            "PULL-DOC-REPLY",
            {"doc": {"roots": [], "x": _ARRAY}},
            msgid="s4",
            reqid="c2",
            buffers=[("b1", payload), ("b2", payload)],
        ),
        _msg(
            "PATCH-DOC",
            {"events": [{"kind": "ColumnDataChanged", "data": _ARRAY}]},
            msgid="s5",
            buffers=[("b1", payload)],
        ),
        _msg("OK", msgid="s6", reqid="c3"),
        _msg("ERROR", {"text": "ValueError('x')", "traceback": None}, msgid="s7", reqid="c4"),
    ]


_POST = _post()

_JSONISH = '{}[]":,. 0123456789-eEtruefalsnl\\/abcxyzüé\x00'
_FIELDS = ("msgid", "msgtype", "reqid", "num_buffers", "id")
_FIELD_VALUES = st.one_of(
    st.sampled_from(
        [
            "ACK",
            "OK",
            "ERROR",
            "PATCH-DOC",
            "PULL-DOC-REQ",
            "PULL-DOC-REPLY",
            "PUSH-DOC",
            "SERVER-INFO-REQ",
            "SERVER-INFO-REPLY",
            "FOO",
            "c1",
            "c2",
            "c3",
            "c4",
            "c9",
            "",
        ]
    ),
    st.integers(min_value=-3, max_value=6),
    st.sampled_from([10**6, 10**18, 2**53 + 1]),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
)
_JUNK: st.SearchStrategy[Fragment] = st.one_of(
    st.text(alphabet=_JSONISH, max_size=12),
    st.binary(max_size=12),
    st.sampled_from(
        [
            '{"id":"b1"}',
            '{"id":"zz"}',
            "{}",
            "[]",
            "null",
            '{"msgid":"s9"}',
            '{"msgid":"s9","msgtype":"PATCH-DOC","num_buffers":1}',
            '{"msgid":"s9","msgtype":"OK","reqid":"c1"}',
            b"\x00\x01",
        ]
    ),
    st.sampled_from(["[" * n + "]" * n for n in (1, 50, 5000)]),
)


def _swap_kind(fragment: Fragment) -> Fragment:
    return fragment.encode() if isinstance(fragment, str) else fragment.decode("latin-1")


def _flip(fragment: Fragment, position: int, char: str) -> Fragment:
    if isinstance(fragment, bytes):
        if not fragment:
            return bytes([ord(char) % 256])
        index = position % len(fragment)
        return fragment[:index] + bytes([ord(char) % 256]) + fragment[index + 1 :]
    if not fragment:
        return char
    index = position % len(fragment)
    return fragment[:index] + char + fragment[index + 1 :]


def _rewrite(fragment: Fragment, key: str, value: Any, delete: bool) -> Fragment:
    if not isinstance(fragment, str):
        return fragment
    try:
        parsed = json.loads(fragment)
    except (ValueError, RecursionError):
        return fragment
    if not isinstance(parsed, dict):
        return fragment
    if delete:
        parsed.pop(key, None)
    else:
        parsed[key] = value
    return json.dumps(parsed)


@st.composite
def _mutate(draw: st.DrawFn, fragments: list[Fragment], max_mutations: int) -> list[Fragment]:
    frames = list(fragments)
    for _ in range(draw(st.integers(min_value=0, max_value=max_mutations))):
        kind = draw(
            st.sampled_from(
                ["truncate", "drop", "dup", "swap_kind", "flip", "insert", "swap", "rewrite"]
            )
        )
        if not frames and kind != "insert":
            continue
        index = draw(st.integers(min_value=0, max_value=max(len(frames) - 1, 0)))
        if kind == "truncate":
            frames = frames[:index]
        elif kind == "drop":
            del frames[index]
        elif kind == "dup":
            frames.insert(index, frames[index])
        elif kind == "swap_kind":
            frames[index] = _swap_kind(frames[index])
        elif kind == "flip":
            position = draw(st.integers(min_value=0, max_value=10_000))
            frames[index] = _flip(frames[index], position, draw(st.sampled_from(_JSONISH)))
        elif kind == "insert":
            frames.insert(index, draw(_JUNK))
        elif kind == "swap":
            other = draw(st.integers(min_value=0, max_value=len(frames) - 1))
            frames[index], frames[other] = frames[other], frames[index]
        else:
            key = draw(st.sampled_from(_FIELDS))
            frames[index] = _rewrite(frames[index], key, draw(_FIELD_VALUES), draw(st.booleans()))
    return frames


@st.composite
def scripts(draw: st.DrawFn, max_mutations: int = 4) -> tuple[list[Fragment], list[Fragment]]:
    """``(pre, post)``: a mutated ACK, and a mutated selection of server messages."""
    pre = draw(_mutate(ACK, max_mutations=2))
    chosen = draw(st.lists(st.sampled_from(_POST), max_size=5))
    post = draw(_mutate([f for message in chosen for f in message], max_mutations))
    return pre, post
