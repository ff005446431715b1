"""The bokeh adapter's own logic: the fast stream encoding, stream merging, atomic patches."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div

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
    reference = _bokeh._encode_with_bokeh(doc, events)
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
    assert _bokeh._plain_stream(events[0]) is None
    encoded = _bokeh.encode_events(doc, events)
    reference = _bokeh._encode_with_bokeh(doc, events)

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
