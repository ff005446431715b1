"""The bokeh adapter's own logic: the fast stream encoding, stream merging, atomic patches."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from bokeh.core.properties import Any as AnyValue
from bokeh.core.properties import Bytes, Dict, Instance, Nullable, String
from bokeh.document import Document
from bokeh.model import Model
from bokeh.models import ColumnDataSource, Div
from bokeh.protocol import Protocol

from bokeh_nb_client import _bokeh


def _events_of(action: Any) -> tuple[Document, list[Any]]:
    doc = Document()
    source = ColumnDataSource(name="src", data={"x": [], "y": []})
    doc.add_root(source)
    events: list[Any] = []
    doc.on_change(lambda event: events.append(event))
    action(source)
    return doc, events


@pytest.mark.parametrize(
    "rows",
    [
        {"x": [1], "y": [2.5]},
        {"x": [2**40, -3], "y": ["a", None]},
        {"x": [True], "y": [-1e300]},
        {"x": (1, 2), "y": (3, 4)},
    ],
)
def test_fast_stream_encoding_equals_bokehs(rows: dict[str, Any]) -> None:
    doc, events = _events_of(lambda source: source.stream(rows, rollover=7))
    fast = _bokeh.encode_events(doc, events)
    reference = _bokeh.patches._encode_with_bokeh(doc, events)
    assert _bokeh.to_json_text(fast.events) == _bokeh.to_json_text(reference.events)
    assert fast.buffers == reference.buffers == []


@pytest.mark.filterwarnings("ignore:out of range integer:UserWarning")  # bokeh's, for 2**60
@pytest.mark.parametrize(
    "rows",
    [
        {"x": [math.nan], "y": [1]},
        {"x": [math.inf], "y": [1]},
        {"x": [2**60], "y": [1]},
        {"x": np.array([1.0]), "y": np.array([2.0])},
    ],
)
def test_values_needing_bokehs_encoding_take_the_slow_path(rows: dict[str, Any]) -> None:
    doc, events = _events_of(lambda source: source.stream(rows))
    assert _bokeh.patches._plain_stream(events[0]) is None
    encoded = _bokeh.encode_events(doc, events)
    reference = _bokeh.patches._encode_with_bokeh(doc, events)

    def without_buffer_ids(text: str) -> str:  # buffer ids are fresh on every encoding
        return re.sub(r'"data":\{"id":"[^"]+"\}', '"data":{"id":"?"}', text)

    assert without_buffer_ids(_bokeh.to_json_text(encoded.events)) == without_buffer_ids(
        _bokeh.to_json_text(reference.events)
    )
    assert len(encoded.buffers) == len(reference.buffers)


def test_consecutive_streams_merge_and_others_do_not() -> None:
    def action(source: ColumnDataSource) -> None:
        source.stream({"x": [1], "y": [1]})
        source.stream({"x": [2], "y": [2]})
        source.stream({"x": [3], "y": [3]}, rollover=5)  # another rollover: a new run

    doc, events = _events_of(action)
    encoded = [e for ev in events for e in _bokeh.encode_events(doc, [ev]).events]
    merged = _bokeh.merge_encoded_events(encoded)
    assert len(merged) == 2
    assert merged[0]["data"]["entries"] == [["x", [1, 2]], ["y", [1, 2]]]
    assert merged[1]["rollover"] == 5


def test_a_patch_that_fails_half_way_changes_nothing() -> None:
    doc = Document()
    div = Div(name="d", text="before", width=100)
    doc.add_root(div)
    patch = {
        "events": [
            {"kind": "ModelChanged", "model": {"id": div.id}, "attr": "text", "new": "after"},
            {"kind": "ModelChanged", "model": {"id": div.id}, "attr": "width", "new": "wide"},
        ]
    }
    outcome = _bokeh.apply_patch(doc, patch, [], setter=None)
    assert outcome.error is not None
    assert div.text == "before"
    assert div.width == 100


def test_a_valid_patch_applies_with_the_setter() -> None:
    doc = Document()
    div = Div(name="d", text="before")
    doc.add_root(div)
    setters: list[object] = []
    doc.on_change(lambda event: setters.append(event.setter))
    marker = object()
    patch = {
        "events": [{"kind": "ModelChanged", "model": {"id": div.id}, "attr": "text", "new": "x"}]
    }
    assert _bokeh.apply_patch(doc, patch, [], setter=marker).error is None
    assert div.text == "x"
    assert setters == [marker]


class ArraysHolder(Model):
    """Arrays and bytes beside and inside nested model definitions."""

    blob = Bytes(default=b"")
    source = Nullable(Instance(ColumnDataSource))
    mixed = Dict(String, AnyValue)


def _as_this_bokehs_server_reads(msgtype: str, text: str, buffers: list[Any]) -> Any:
    """The message as the installed bokeh's server assembles it from the wire."""
    header: dict[str, Any] = {"msgid": "1", "msgtype": msgtype}
    if buffers:
        header["num_buffers"] = len(buffers)
    message = Protocol().assemble(json.dumps(header), "{}", text)
    for bid, data in buffers:
        message.assemble_buffer({"id": bid}, data)
    return message


def _push_to_new_server_doc(doc: Document) -> tuple[Document, list[tuple[str, str, Any]]]:
    """Push ``doc`` into a new document as the installed bokeh's server would."""
    content = _bokeh.document_content(doc)
    messages: list[tuple[str, str, Any]] = [("PUSH-DOC", content.text, content.buffers)]
    if content.restore is not None:
        messages.append(("PATCH-DOC", *content.restore))
    server_doc = Document()
    _as_this_bokehs_server_reads(*messages[0]).push_to_document(server_doc)
    for message in messages[1:]:
        _as_this_bokehs_server_reads(*message).apply_to_document(server_doc)
    return server_doc, messages


def test_push_reaches_this_bokehs_server_with_arrays_as_binary_buffers_only() -> None:
    """PUSH-DOC (plus, before bokeh 3.9, its restoring PATCH-DOC) carries no array as text."""
    x = np.arange(10_000, dtype="float64")
    y = np.linspace(0, 1, 10_000).reshape(100, 100)
    blob = bytes(range(256)) * 40
    doc = Document()
    inner = ColumnDataSource(name="inner", data={"y": y})
    doc.add_root(ColumnDataSource(name="outer", data={"x": x}))
    doc.add_root(ColumnDataSource(name="listed", data={"names": ["a", "b"]}))
    doc.add_root(
        ArraysHolder(
            name="holder",
            blob=blob,
            source=inner,
            mixed={"z": np.ones(5_000), "src": ColumnDataSource(name="nested", data={"w": x})},
        )
    )
    server_doc, messages = _push_to_new_server_doc(doc)
    for _, text, _ in messages:
        assert len(text) < 10_000, text[:300]
    sent = sum(len(data) for _, _, buffers in messages for _, data in buffers)
    assert sent == x.nbytes * 2 + y.nbytes + len(blob) + 5_000 * 8
    outer = server_doc.select_one({"name": "outer"})
    assert np.array_equal(outer.data["x"], x)
    assert server_doc.select_one({"name": "listed"}).data == {"names": ["a", "b"]}
    holder = server_doc.select_one({"name": "holder"})
    assert holder.blob == blob
    assert holder.source is server_doc.select_one({"name": "inner"})
    assert np.array_equal(holder.source.data["y"], y)
    assert np.array_equal(holder.mixed["z"], np.ones(5_000))
    assert holder.mixed["src"].name == "nested"
    assert np.array_equal(holder.mixed["src"].data["w"], x)


def test_patch_content_sends_arrays_as_references_to_binary_buffers_only() -> None:
    x = np.arange(10_000, dtype="float64")
    doc = Document()
    source = ColumnDataSource(name="src", data={"x": [], "y": []})
    doc.add_root(source)
    server_doc, _ = _push_to_new_server_doc(doc)
    events: list[Any] = []
    doc.on_change(lambda event: events.append(event))
    source.data = {"x": x, "y": x * 2}
    encoded = _bokeh.encode_events(doc, events)
    text = _bokeh.patch_content_json(encoded.events, encoded.buffers)
    assert len(text) < 1_000, text[:300]
    assert sorted(len(data) for _, data in encoded.buffers) == [x.nbytes, x.nbytes]
    message = _as_this_bokehs_server_reads("PATCH-DOC", text, encoded.buffers)
    message.apply_to_document(server_doc)
    assert np.array_equal(server_doc.select_one({"name": "src"}).data["y"], x * 2)
