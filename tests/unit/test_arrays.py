"""Zero-copy array decoding (_arrays.py) and its use by the bokeh adapter's receive path."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest
from bokeh.core.serialization import Buffer
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.protocol import Protocol

from bokeh_nb_client import _bokeh
from bokeh_nb_client._arrays import with_arrays

OTHER_ORDER = "big" if sys.byteorder == "little" else "little"


def received(data: bytes) -> memoryview:
    """A payload as the receive path hands it over: writable memory nobody else holds."""
    return memoryview(np.frombuffer(data, dtype=np.uint8).copy())


def ndarray_rep(buffer_id: str, dtype: str, shape: list[int], order: str = sys.byteorder) -> Any:
    return {
        "type": "ndarray",
        "array": {"type": "bytes", "data": {"id": buffer_id}},
        "shape": shape,
        "dtype": dtype,
        "order": order,
    }


def test_an_array_views_its_received_buffer() -> None:
    values = np.arange(6, dtype="float64")
    view = received(values.tobytes())
    content = {"data": {"type": "map", "entries": [["x", ndarray_rep("b1", "float64", [6])]]}}
    before = json.dumps(content)
    decoded, remaining = with_arrays(content, [("b1", view)])
    array = decoded["data"]["entries"][0][1]
    assert isinstance(array, np.ndarray)
    assert np.array_equal(array, values)
    assert array.flags.writeable
    assert np.shares_memory(array, np.asarray(view))  # no copy
    assert remaining == []  # bokeh has nothing left to resolve
    assert json.dumps(content) == before  # the received content is not modified


def test_shapes_and_dtypes() -> None:
    values = np.arange(6, dtype="int32").reshape(2, 3)
    decoded, _ = with_arrays(
        [ndarray_rep("a", "int32", [2, 3])], [("a", received(values.tobytes()))]
    )
    assert decoded[0].shape == (2, 3)
    assert np.array_equal(decoded[0], values)


@pytest.mark.parametrize(
    "rep",
    [
        ndarray_rep("a", "float64", [2], order=OTHER_ORDER),  # needs a byte swap
        ndarray_rep("a", "float64", [3]),  # size mismatch: bokeh reports it
        ndarray_rep("a", "complex128", [1]),  # not a binary dtype bokeh sends
    ],
)
def test_what_bokeh_must_decode_is_left_to_it_with_bytes(rep: Any) -> None:
    decoded, remaining = with_arrays([rep], [("a", received(bytes(16)))])
    assert decoded == [rep]
    assert remaining == [("a", bytes(16))]
    assert type(remaining[0][1]) is bytes  # bokeh only reads bytes as raw data


def test_bytes_and_read_only_buffers_are_left_to_bokeh() -> None:
    rep = ndarray_rep("a", "float64", [1])
    for buffer in (bytes(8), memoryview(bytes(8))):
        decoded, remaining = with_arrays([rep], [("a", buffer)])
        assert decoded == [rep]
        assert remaining == [("a", bytes(8))]


def test_two_uses_of_one_buffer_never_share_memory() -> None:
    view = received(np.ones(2).tobytes())
    rep = ndarray_rep("a", "float64", [2])
    decoded, remaining = with_arrays(
        [rep, rep, {"type": "bytes", "data": {"id": "a"}}], [("a", view)]
    )
    first, second = decoded[0], decoded[1]
    assert not np.shares_memory(first, second)
    assert remaining == [("a", view.tobytes())]  # the plain bytes value still needs it


# -- through the bokeh adapter -------------------------------------------------------------


def server_reply(doc: Document) -> tuple[Any, list[tuple[str, bytes]]]:
    """The content and binary buffers of a PULL-DOC-REPLY for ``doc``, on every bokeh 3.x.

    bokeh's own message holds each array's bytes as a deferred ``Buffer``; on the
    wire that is a ``{"id": ...}`` reference plus a binary buffer (bokeh >= 3.9
    servers send it so; earlier ones inline base64, where there is nothing to view).
    """
    message = Protocol().create("PULL-DOC-REPLY", "r1", doc)
    buffers: list[tuple[str, bytes]] = []

    def as_wire(node: Any) -> Any:
        if isinstance(node, Buffer):
            buffers.append((str(node.id), node.to_bytes()))
            return {"id": str(node.id)}
        if isinstance(node, dict):
            return {key: as_wire(value) for key, value in node.items()}
        if isinstance(node, list | tuple):
            return [as_wire(value) for value in node]
        return node

    return json.loads(json.dumps(as_wire(message.content))), buffers


def pulled_source(n: int = 1000) -> tuple[Document, ColumnDataSource]:
    """A document as a pull delivers it: content JSON plus writable received buffers."""
    server_doc = Document()
    server_doc.add_root(
        ColumnDataSource(
            name="src",
            data={
                "x": np.arange(n, dtype="float64"),
                "y": np.arange(n, dtype="int32"),
                "s": ["a"] * n,
            },
        )
    )
    content, buffers = server_reply(server_doc)
    wire_buffers = [(bid, received(data)) for bid, data in buffers]
    doc = _bokeh.new_document_from_reply(content, wire_buffers)
    source = doc.get_model_by_name("src")
    assert isinstance(source, ColumnDataSource)
    return doc, source


def test_pulled_arrays_are_equal_writable_and_view_the_received_memory() -> None:
    _, source = pulled_source()
    x, y = source.data["x"], source.data["y"]
    assert np.array_equal(x, np.arange(1000, dtype="float64"))
    assert np.array_equal(y, np.arange(1000, dtype="int32"))
    assert x.dtype == np.float64 and y.dtype == np.int32
    assert x.flags.writeable and y.flags.writeable
    assert not x.flags.owndata  # a view of the received buffer, not a copy


def test_user_patch_and_stream_work_in_place_on_pulled_arrays() -> None:
    doc, source = pulled_source()
    events: list[Any] = []
    doc.on_change(events.append)
    source.patch({"x": [(0, -1.0), (slice(1, 3), [-2.0, -3.0])]})
    assert list(source.data["x"][:4]) == [-1.0, -2.0, -3.0, 3.0]
    source.stream(
        {"x": np.array([7.0]), "y": np.array([7], dtype="int32"), "s": ["z"]}, rollover=1000
    )
    assert len(source.data["x"]) == 1000 and source.data["x"][-1] == 7.0
    assert len(events) == 2


def test_server_patch_and_stream_apply_to_pulled_arrays() -> None:
    doc, source = pulled_source()
    sid = source.id
    patch = {
        "events": [
            {
                "kind": "ColumnsPatched",
                "model": {"id": sid},
                "attr": "data",
                "patches": {"type": "map", "entries": [["x", [[5, 55.0]]]]},
            },
            {
                "kind": "ColumnsStreamed",
                "model": {"id": sid},
                "attr": "data",
                "data": {
                    "type": "map",
                    "entries": [
                        ["x", ndarray_rep("p1", "float64", [2])],
                        ["y", ndarray_rep("p2", "int32", [2])],
                        ["s", ["b", "c"]],
                    ],
                },
                "rollover": None,
            },
        ]
    }
    buffers = [
        ("p1", received(np.array([1000.0, 1001.0]).tobytes())),
        ("p2", received(np.array([1000, 1001], dtype="int32").tobytes())),
    ]
    outcome = _bokeh.apply_patch(doc, patch, buffers, setter=object())
    assert outcome.error is None
    assert source.data["x"][5] == 55.0
    assert list(source.data["x"][-2:]) == [1000.0, 1001.0]
    assert list(source.data["y"][-2:]) == [1000, 1001]
    assert len(source.data["s"]) == 1002


def test_replacing_the_document_keeps_arrays_zero_copy() -> None:
    doc, _ = pulled_source()
    other = Document()
    other.add_root(ColumnDataSource(name="src", data={"x": np.ones(5)}))
    content, buffers = server_reply(other)
    _bokeh.replace_document_from_reply(doc, content, [(b, received(d)) for b, d in buffers])
    source = doc.get_model_by_name("src")
    assert isinstance(source, ColumnDataSource)
    assert np.array_equal(source.data["x"], np.ones(5))
    assert not source.data["x"].flags.owndata
