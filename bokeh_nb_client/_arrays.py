"""Zero-copy ndarrays for received documents and patches (numpy only, no bokeh).

bokeh's ``Deserializer`` turns every binary ``ndarray`` rep (PROTOCOL.md §4.1)
into ``np.copy(np.frombuffer(buffer))``: a second copy of every array, so a pull
peaks at twice its payload. The receive path (``transport/frames.py``) hands each
large buffer over as a writable ``memoryview`` of memory that nothing else holds,
so the array can simply *be* that memory. :func:`with_arrays` replaces those reps
in the content with such arrays before bokeh decodes it; bokeh's decoder passes
values that are not JSON through unchanged, and everything else (models,
references, lists, byte-swapped or unusual arrays) is still decoded by bokeh.

Arrays made here are writable and own their memory alone (one array per
buffer), exactly like the copies bokeh makes, so in-place ``patch()`` and
``stream()`` on a pulled source behave as before. Buffers that arrive as
``bytes`` (small ones, other transports) are left to bokeh, which copies them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["with_arrays"]

BufferData = bytes | memoryview

#: The dtypes bokeh sends as binary (``bokeh.util.serialization.BINARY_ARRAY_TYPES``).
_BINARY_DTYPES = frozenset(
    {"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}
)


def with_arrays(
    content: Any, buffers: Sequence[tuple[str, BufferData]]
) -> tuple[Any, list[tuple[str, bytes]]]:
    """Decode the ndarray reps of ``content`` that can view a received buffer.

    Returns the content with those reps replaced by arrays (containers on the way
    are copied, ``content`` itself is not modified) and the buffers bokeh still
    has to resolve, as ``bytes``: bokeh's decoder only treats ``bytes`` as raw
    array data. A buffer that an array now views is left out unless something
    else refers to it too.
    """
    views = {
        buffer_id: data
        for buffer_id, data in buffers
        if isinstance(data, memoryview) and not data.readonly
    }
    if not views:
        return content, [(bid, _as_bytes(data)) for bid, data in buffers]
    walker = _Walker(views)
    decoded = walker.walk(content)
    remaining = [
        (bid, _as_bytes(data))
        for bid, data in buffers
        if bid not in walker.consumed or bid in walker.referenced
    ]
    return decoded, remaining


def _as_bytes(data: BufferData) -> bytes:
    return data if isinstance(data, bytes) else data.tobytes()


class _Walker:
    __slots__ = ("consumed", "referenced", "views")

    def __init__(self, views: dict[str, memoryview]) -> None:
        self.views = views
        self.consumed: set[str] = set()  # buffers an array views
        self.referenced: set[str] = set()  # buffers bokeh must still resolve

    def walk(self, node: Any) -> Any:
        kind = type(node)
        if kind is dict:
            rep_type = node.get("type")
            if rep_type == "ndarray":
                array = self._ndarray(node)
                if array is not None:
                    return array
            elif rep_type == "bytes":
                self._note_reference(node)
                return node
            changed: dict[Any, Any] | None = None
            for key, value in node.items():
                if type(value) is dict or type(value) is list:
                    new = self.walk(value)
                    if new is not value:
                        if changed is None:
                            changed = dict(node)
                        changed[key] = new
            return node if changed is None else changed
        if kind is list:
            changed_list: list[Any] | None = None
            for index, value in enumerate(node):
                if type(value) is dict or type(value) is list:
                    new = self.walk(value)
                    if new is not value:
                        if changed_list is None:
                            changed_list = list(node)
                        changed_list[index] = new
            return node if changed_list is None else changed_list
        return node

    def _note_reference(self, bytes_rep: dict[str, Any]) -> None:
        data = bytes_rep.get("data")
        if type(data) is dict and type(data.get("id")) is str:
            self.referenced.add(data["id"])

    def _ndarray(self, rep: dict[str, Any]) -> np.ndarray[Any, Any] | None:
        array = rep.get("array")
        if type(array) is not dict or array.get("type") != "bytes":
            return None  # a list of values: bokeh's job
        data = array.get("data")
        buffer_id = data.get("id") if type(data) is dict else None
        view = self.views.get(buffer_id) if type(buffer_id) is str else None
        dtype, shape = rep.get("dtype"), rep.get("shape")
        if (
            view is None
            or dtype not in _BINARY_DTYPES
            or rep.get("order") != sys.byteorder
            or type(shape) is not list
            or not all(type(n) is int and n >= 0 for n in shape)
        ):
            self._note_reference(array)
            return None
        assert isinstance(buffer_id, str)
        itemsize = np.dtype(dtype).itemsize
        if view.nbytes != math.prod(shape) * itemsize:
            self._note_reference(array)  # bokeh raises its own error for this
            return None
        result: np.ndarray[Any, Any] = np.frombuffer(view, dtype=dtype)
        if buffer_id in self.consumed:
            result = result.copy()  # two arrays never share one buffer
        self.consumed.add(buffer_id)
        if len(shape) > 1:
            result = result.reshape(shape)
        return result
