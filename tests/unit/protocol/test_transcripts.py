"""Replay traffic recorded from a real ``bokeh serve`` through ClientProtocol.

The transcripts are written by ``record_transcripts.py`` (PROTOCOL.md §9). Each
server fragment is fed to ``receive_fragment``. At each client message, the machine
is asked to send the same request, and its fragments must equal the recorded ones
in structure (parsed JSON, ignoring msgid values) and kind (text or binary).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bokeh_nb_client.protocol import (
    Acknowledged,
    ClientProtocol,
    ErrorReplyReceived,
    Event,
    MsgType,
    OutFragment,
    PatchReceived,
    ReplyReceived,
    State,
)
from bokeh_nb_client.protocol.wire import Fragment

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "transcripts"
FILES = sorted(TRANSCRIPTS.glob("*/*.jsonl"))

ACK = ("ACK",)
PATCH = ("PATCH",)


def reply(request: str, reply_type: str) -> tuple[str, ...]:
    return ("REPLY", request, reply_type)


def error(request: str) -> tuple[str, ...]:
    return ("ERROR", request)


EXPECTED_EVENTS: dict[str, list[tuple[str, ...]]] = {
    "session.jsonl": [
        ACK,
        reply("PULL-DOC-REQ", "PULL-DOC-REPLY"),
        reply("SERVER-INFO-REQ", "SERVER-INFO-REPLY"),
        reply("PATCH-DOC", "OK"),  # ModelChanged
        error("PATCH-DOC"),  # unknown model id
        PATCH,  # the app's reaction to the button click arrives before its OK
        reply("PATCH-DOC", "OK"),
        reply("PATCH-DOC", "OK"),  # ColumnsStreamed with a buffer
    ],
    "broadcast.jsonl": [
        ACK,
        reply("PULL-DOC-REQ", "PULL-DOC-REPLY"),
        PATCH,  # another connection's ColumnsStreamed, with a buffer
    ],
    "push_doc.jsonl": [
        ACK,
        reply("PULL-DOC-REQ", "PULL-DOC-REPLY"),
        *[PATCH] * 7,  # RootRemoved x3, RootAdded x3, TitleChanged: before the OK
        reply("PUSH-DOC", "OK"),
    ],
}


@dataclass(frozen=True, slots=True)
class Line:
    direction: str
    fragment: Fragment


def load(path: Path) -> list[Line]:
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        record = json.loads(text)
        assert set(record) == {"dir", "kind", "data"}, f"{path.name}:{number}"
        assert record["dir"] in ("c2s", "s2c"), f"{path.name}:{number}"
        if record["kind"] == "text":
            fragment: Fragment = record["data"]
        else:
            assert record["kind"] == "binary", f"{path.name}:{number}"
            fragment = base64.b64decode(record["data"], validate=True)
        lines.append(Line(record["dir"], fragment))
    return lines


def structure(fragments: list[Fragment] | list[OutFragment]) -> list[Any]:
    """Parsed JSON for text fragments (header without msgid), bytes for binary ones."""
    result: list[Any] = []
    for index, fragment in enumerate(fragments):
        if isinstance(fragment, str):
            value = json.loads(fragment)
            if index == 0:
                value.pop("msgid")
            result.append(("text", value))
        else:
            result.append(("binary", bytes(fragment)))
    return result


def as_bytes(fragment: Fragment) -> bytes:
    assert isinstance(fragment, bytes)
    return fragment


def describe(event: Event) -> tuple[str, ...]:
    match event:
        case Acknowledged():
            return ACK
        case PatchReceived():
            return PATCH
        case ReplyReceived(request_type=request_type, message=message):
            return reply(request_type, message.msgtype)
        case ErrorReplyReceived(request_type=request_type):
            return error(request_type)


def replay(lines: list[Line]) -> tuple[ClientProtocol, list[Event]]:
    client_headers = [
        json.loads(line.fragment)
        for index, line in enumerate(lines)
        if line.direction == "c2s"
        and isinstance(line.fragment, str)
        and (index == 0 or lines[index - 1].direction == "s2c")
    ]
    recorded_ids = iter(header["msgid"] for header in client_headers)
    protocol = ClientProtocol(lambda: next(recorded_ids))
    events: list[Event] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.direction == "s2c":
            event = protocol.receive_fragment(line.fragment)
            if event is not None:
                events.append(event)
            index += 1
            continue
        # One whole client message: header, metadata, content, buffer pairs.
        assert isinstance(line.fragment, str)
        header = json.loads(line.fragment)
        group = [
            entry.fragment for entry in lines[index : index + 3 + 2 * header.get("num_buffers", 0)]
        ]
        assert all(entry.direction == "c2s" for entry in lines[index : index + len(group)])
        buffers = [
            (json.loads(group[position])["id"], as_bytes(group[position + 1]))
            for position in range(3, len(group), 2)
        ]
        msgid, fragments = protocol.send_request(
            MsgType(header["msgtype"]),
            json.loads(group[2]),
            buffers=buffers,
            metadata=json.loads(group[1]),
        )
        assert msgid == header["msgid"]
        assert structure(fragments) == structure(group)
        index += len(group)
    return protocol, events


def test_transcripts_exist() -> None:
    assert {path.name for path in FILES} >= set(EXPECTED_EVENTS)


@pytest.mark.parametrize("path", FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_replay(path: Path) -> None:
    assert path.name in EXPECTED_EVENTS, f"add the expected events of {path.name} to this test"
    protocol, events = replay(load(path))
    assert [describe(event) for event in events] == EXPECTED_EVENTS[path.name]
    assert protocol.state is State.OPEN
    assert dict(protocol.pending) == {}
    protocol.send_close()
    terminated = protocol.receive_close(1000, "bye")
    assert terminated.pending == ()


def events_of(name: str) -> list[Event]:
    paths = [path for path in FILES if path.name == name]
    if not paths:
        pytest.skip(f"no {name} transcript")
    return replay(load(paths[-1]))[1]


def test_session_contents() -> None:
    events = events_of("session.jsonl")
    pulled = events[1]
    assert isinstance(pulled, ReplyReceived)
    assert pulled.message.content["doc"]["title"] == "proto-app"
    ((buffer_id, payload),) = pulled.message.buffers
    assert buffer_id in json.dumps(pulled.message.content)
    assert len(payload) == 32  # float64 arange(4)

    info = events[2]
    assert isinstance(info, ReplyReceived)
    versions = info.message.content["version_info"]
    assert versions["bokeh"] == versions["server"]

    failed = events[4]
    assert isinstance(failed, ErrorReplyReceived)
    assert "nope123" in failed.text
    assert failed.traceback is not None
    assert failed.traceback.startswith("Traceback")

    reaction = events[5]
    assert isinstance(reaction, PatchReceived)
    (change,) = reaction.message.content["events"]
    assert (change["kind"], change["new"]) == ("ModelChanged", "clicked")


def test_broadcast_patch_carries_a_buffer() -> None:
    patch = events_of("broadcast.jsonl")[2]
    assert isinstance(patch, PatchReceived)
    (event,) = patch.message.content["events"]
    assert event["kind"] == "ColumnsStreamed"
    ((_, payload),) = patch.message.buffers
    assert len(payload) == 16  # two float64 values


def test_push_echoes_root_changes_before_ok() -> None:
    events = events_of("push_doc.jsonl")
    kinds = [
        change["kind"]
        for event in events
        if isinstance(event, PatchReceived)
        for change in event.message.content["events"]
    ]
    assert kinds == ["RootRemoved"] * 3 + ["RootAdded"] * 3 + ["TitleChanged"]
