"""PATCH-DOC contents: local change events encoded (with a fast path for plain
streams, and merged runs of streams), and server patches applied as BokehJS does.

Part of the bokeh adapter (``bokeh_nb_client._bokeh``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bokeh.core.serialization import (
    Deserializer,
    Serialized,
    Serializer,
    UnknownReferenceError,
)
from bokeh.document import Document
from bokeh.document.callbacks import invoke_with_curdoc
from bokeh.document.events import (
    ColumnDataChangedEvent,
    ColumnsStreamedEvent,
    DocumentPatchedEvent,
)
from bokeh.model import Model

from .documents import BufferPair, ReceivedBuffer, _serialized, to_json_text

log = logging.getLogger(__name__)

# -- outgoing patches (PROTOCOL.md §4.3) -----------------------------------------


@dataclass(frozen=True, slots=True)
class EncodedEvents:
    """Serialized patch events (JSON-compatible trees) and the buffers they name."""

    events: list[Any]
    buffers: list[BufferPair]


def encode_events(doc: Document, events: Sequence[DocumentPatchedEvent]) -> EncodedEvents:
    """Serialize ``events`` now, as a snapshot (see ``_encode_with_bokeh``).

    The commonest burst, ``source.stream()`` of a few plain numbers or strings,
    takes a fast path that builds exactly what bokeh's serializer would.
    """
    if len(events) == 1:
        plain = _plain_stream(events[0])
        if plain is not None:
            return EncodedEvents([plain], [])
    return _encode_with_bokeh(doc, events)


_MAX_SAFE_INT = 2**53 - 1


def _plain_stream(event: DocumentPatchedEvent) -> dict[str, Any] | None:
    """The wire form of a stream of plain JSON scalars, or None to use bokeh's serializer."""
    if type(event) is not ColumnsStreamedEvent:
        return None
    data = event.data
    if type(data) is not dict:
        return None
    entries: list[list[Any]] = []
    for key, column in data.items():
        if type(key) is not str or type(column) not in (list, tuple):
            return None
        for value in column:
            kind = type(value)
            if kind is float:
                if not math.isfinite(value):
                    return None  # NaN and infinities have a special encoding
            elif kind is int:
                if abs(value) > _MAX_SAFE_INT:
                    return None
            elif kind is not str and kind is not bool and value is not None:
                return None
        entries.append([key, list(column)])
    return {
        "kind": "ColumnsStreamed",
        "model": {"id": str(event.model.id)},
        "attr": event.attr,
        "data": {"type": "map", "entries": entries},
        "rollover": event.rollover,
    }


def _encode_with_bokeh(doc: Document, events: Sequence[DocumentPatchedEvent]) -> EncodedEvents:
    """Serialize ``events`` exactly as bokeh's PATCH-DOC does.

    Models the document already synced become references; new ones are sent in
    full and then marked as synced. Buffers are copied, so later in-place changes
    to the user's arrays do not alter what is sent.
    """
    serializer = Serializer(references=doc.models.synced_references)
    encoded = serializer.encode([_whole_columns(event) for event in events])
    doc.models.flush_synced(lambda model: not serializer.has_ref(model))
    buffers = [(str(b.id), b.to_bytes()) for b in serializer.buffers]
    return EncodedEvents(list(encoded), buffers)


def _whole_columns(event: DocumentPatchedEvent) -> DocumentPatchedEvent:
    """A partial ColumnDataChanged as one that names every column.

    ``source.data["y"] = ...`` makes bokeh send only column ``y``, and bokeh's
    server (like bokeh's Python client) then replaces the source's data with that
    column alone, dropping the others. Sending every column (serialized now, as a
    snapshot) keeps the server right; it costs the bytes of the other columns.
    """
    if type(event) is ColumnDataChangedEvent and event.cols is not None:
        return ColumnDataChangedEvent(event.document, event.model, event.attr, setter=event.setter)
    return event


def merge_encoded_events(events: list[Any]) -> list[Any]:
    """Merge runs of single-source stream events into one event each.

    Streaming rows ``a`` then ``b`` into the same column data source with the same
    ``rollover`` is the same as streaming ``a + b`` once. A burst of small
    ``stream()`` calls therefore reaches the server as one event per run, which
    the server applies in one step instead of thousands. Only events whose every
    column is a plain list (no binary buffer) are merged.
    """
    merged: list[Any] = []
    for event in events:
        if merged and _can_merge_streams(merged[-1], event):
            last = merged[-1]
            for (_, old), (_, new) in zip(
                last["data"]["entries"], event["data"]["entries"], strict=True
            ):
                old.extend(new)
            continue
        if _is_plain_stream(event):
            event = dict(event)
            event["data"] = {
                "type": "map",
                "entries": [[key, list(value)] for key, value in event["data"]["entries"]],
            }
        merged.append(event)
    return merged


def _is_plain_stream(event: Any) -> bool:
    if not isinstance(event, dict) or event.get("kind") != "ColumnsStreamed":
        return False
    data = event.get("data")
    if not isinstance(data, dict) or data.get("type") != "map":
        return False
    entries = data.get("entries")
    return isinstance(entries, list) and all(
        isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[1], list)
        for entry in entries
    )


def _can_merge_streams(last: Any, event: Any) -> bool:
    if not (_is_plain_stream(last) and _is_plain_stream(event)):
        return False
    if last["model"] != event["model"] or last["attr"] != event["attr"]:
        return False
    if last.get("rollover") != event.get("rollover"):
        return False
    last_keys = [key for key, _ in last["data"]["entries"]]
    keys = [key for key, _ in event["data"]["entries"]]
    return last_keys == keys


def patch_content_json(events: Sequence[Any], buffers: Sequence[BufferPair]) -> str:
    """JSON text of a PATCH-DOC content holding ``events``; ``buffers`` travel as binary."""
    return to_json_text({"events": list(events)}, buffers)


# -- incoming patches ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    """What applying a server patch did.

    ``error`` is None when the patch applied. Otherwise the document may be out of
    sync with the server (an unknown model reference, a value this bokeh cannot
    decode) and the caller must re-pull.
    """

    error: Exception | None = None


def apply_patch(
    doc: Document, content: Any, buffers: Sequence[ReceivedBuffer], setter: object
) -> PatchOutcome:
    """Apply a server PATCH-DOC to ``doc`` with ``setter``, all or nothing (home thread).

    The whole patch is decoded and every event checked before the first one is
    applied, so a patch that fails (an unknown model, a value this model rejects,
    a stream that misses columns) leaves the document untouched. Patches that
    refer to models the document once had but dropped are ignored, as bokeh does
    (PROTOCOL.md §3). Failures are returned, not raised: the remedy (a re-pull)
    belongs to the session.
    """
    payload = _serialized(content, buffers)
    try:
        invoke_with_curdoc(doc, lambda: _apply_checked(doc, payload, setter))
    except Exception as exc:  # noqa: BLE001 - every failure means "re-pull", reported to the caller
        return PatchOutcome(error=exc)
    return PatchOutcome()


def _apply_checked(doc: Document, payload: Serialized[Any], setter: object) -> None:
    deserializer = Deserializer(list(doc.models), setter=setter)  # type: ignore[arg-type]
    try:
        patch = deserializer.deserialize(payload)
    except UnknownReferenceError as error:
        if doc.models.seen(error.id):
            return  # a model we dropped meanwhile: harmless, as in bokeh
        raise
    events = patch["events"]
    if not isinstance(events, list):
        raise ValueError("PATCH-DOC content has no list of events")
    for event in events:
        _check_event(event)
    for event in events:
        _apply_event(doc, event, setter)
    doc.models.flush_synced(lambda model: not deserializer.has_ref(model))


def _apply_event(doc: Document, event: dict[str, Any], setter: object) -> None:
    """Apply one decoded, checked event as BokehJS does.

    Two kinds differ from bokeh's own Python handler:

    * ColumnDataChanged with ``cols`` (a server callback doing
      ``source.data["y"] = ...`` sends only the named columns) is merged into the
      existing columns, as BokehJS does; bokeh's handler would replace the data
      with the named columns alone and drop the others.
    * ModelChanged and ColumnDataChanged set the property through its descriptor
      instead of ``HasProps.set_from_json``, which formats the whole new value
      (``repr`` of a large array) for a trace log line on every call, even with
      logging off: that formatting cost 19 to 50 ms per patch on big sources.
    """
    kind = event["kind"]
    model = event.get("model")
    if kind == "ModelChanged" and isinstance(model, Model):
        _set_from_json(model, event["attr"], event["new"], setter)
    elif kind == "ColumnDataChanged" and isinstance(model, Model):
        attr = event["attr"]
        data = event["data"]
        cols = event.get("cols")
        if cols is not None and isinstance(data, dict):
            merged = dict(getattr(model, attr))
            merged.update({col: data[col] for col in cols if col in data})
            data = merged
        _set_from_json(model, attr, data, setter)
    else:
        DocumentPatchedEvent.handle_event(doc, event, setter)  # type: ignore[arg-type]


def _set_from_json(model: Model, attr: str, value: Any, setter: object) -> None:
    descriptor = model.lookup(attr, raises=False)
    if descriptor is None:
        log.warning("a server patch names %r, which %s does not have; ignored", attr, model)
        return
    descriptor.set_from_json(model, value, setter=setter)  # type: ignore[arg-type]


def _check_event(event: Any) -> None:
    """Raise if applying ``event`` would fail half-way (values are already decoded)."""
    if not isinstance(event, dict) or event.get("kind") not in DocumentPatchedEvent._handlers:
        raise ValueError(f"unknown patch event {event!r:.100}")
    kind = event["kind"]
    model = event.get("model")
    if kind == "ModelChanged" and isinstance(model, Model):
        descriptor = model.lookup(event["attr"], raises=False)
        if descriptor is not None:
            descriptor.property.prepare_value(model, event["attr"], event["new"])
    elif kind == "ColumnsStreamed" and isinstance(model, Model):
        existing = set(getattr(model, event["attr"]))
        new = set(event["data"])
        if existing and new != existing:
            raise ValueError(
                f"stream to {model} names columns {sorted(new)}, the source has {sorted(existing)}"
            )
    elif kind == "ColumnsPatched" and isinstance(model, Model):
        missing = set(event["patches"]) - set(getattr(model, event["attr"]))
        if missing:
            raise ValueError(f"patch to {model} names unknown columns {sorted(missing)}")
