"""The one place that touches bokeh's internals.

Everything here is a thin, typed adapter over bokeh: Document <-> JSON with binary
buffers (PROTOCOL.md §4), building and applying PATCH-DOC contents with a setter
(echo suppression, §4.3), tokens and session ids (§1.4), client-side session
callbacks, embed HTML and the browser. Other modules see plain Python values
(JSON-compatible trees and ``(id, bytes)`` buffer pairs), never bokeh's
serialization classes, so a change in bokeh's internals is fixed here alone.

Model ids: bokeh's default ids are a per-process counter (``p1000``, ``p1001``,
...), so a model created in this process can get the id of a different model on
the server and be silently mapped onto it (PROTOCOL.md §10, pitfall 6). Importing
this module therefore switches the process to globally unique model ids, exactly
as ``BOKEH_SIMPLE_IDS=no`` does, unless the user has set ``BOKEH_SIMPLE_IDS``
explicitly.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import bokeh
from bokeh.core.serialization import (
    Buffer,
    DeserializationError,
    Deserializer,
    Serialized,
    Serializer,
    UnknownReferenceError,
)
from bokeh.core.types import ID
from bokeh.document import Document
from bokeh.document.callbacks import invoke_with_curdoc
from bokeh.document.events import (
    ColumnDataChangedEvent,
    ColumnsStreamedEvent,
    DocumentChangedEvent,
    DocumentPatchedEvent,
    SessionCallbackAdded,
    SessionCallbackRemoved,
)
from bokeh.model import Model
from bokeh.resources import DEFAULT_SERVER_HTTP_URL as _BOKEH_DEFAULT_URL
from bokeh.server.callbacks import (
    NextTickCallback,
    PeriodicCallback,
    SessionCallback,
    TimeoutCallback,
)
from bokeh.settings import settings
from bokeh.util import token as bokeh_token

from ._arrays import with_arrays
from .exceptions import UnknownModelTypes

__all__ = [
    "BOKEH_VERSION",
    "DEFAULT_SERVER_HTTP_URL",
    "CallbackSpec",
    "Document",
    "DocumentContent",
    "EncodedEvents",
    "ErrorReason",
    "Model",
    "PatchOutcome",
    "apply_patch",
    "callback_spec",
    "classify_event",
    "document_content",
    "encode_events",
    "error_reason",
    "merge_encoded_events",
    "new_document_from_reply",
    "replace_document_from_reply",
    "resolve_signing",
    "server_session_script",
    "session_id_and_token",
    "unknown_model_types",
    "versions_compatible",
]

if TYPE_CHECKING:
    from bokeh.client.states import ErrorReason

log = logging.getLogger(__name__)

BOKEH_VERSION: str = bokeh.__version__
DEFAULT_SERVER_HTTP_URL: str = _BOKEH_DEFAULT_URL

BufferPair = tuple[str, bytes]
ReceivedBuffer = tuple[str, bytes | memoryview]


def _use_unique_model_ids() -> None:
    if "BOKEH_SIMPLE_IDS" not in os.environ:
        settings.simple_ids.set_value(False)


_use_unique_model_ids()


def error_reason(http: bool) -> ErrorReason:
    """``bokeh.client``'s ErrorReason member (imported lazily: bokeh.client pulls in tornado)."""
    from bokeh.client.states import ErrorReason

    return ErrorReason.HTTP_ERROR if http else ErrorReason.NETWORK_ERROR


# -- tokens and session ids (PROTOCOL.md §1.4) ---------------------------------


def resolve_signing(
    secret_key: str | bytes | None, sign_sessions: bool | None
) -> tuple[bytes | None, bool]:
    """Decide the secret key and whether to sign, reading the environment now.

    Explicit arguments win. ``BOKEH_SECRET_KEY`` supplies a missing key;
    ``BOKEH_SIGN_SESSIONS`` (any non-empty value, as bokeh reads it) turns signing
    on when ``sign_sessions`` is None; an explicit key also turns it on.

    Raises:
        ValueError: signing was asked for without any secret key.
    """
    key: str | bytes | None = secret_key
    if key is None:
        key = os.environ.get("BOKEH_SECRET_KEY") or None
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    if sign_sessions is None:
        sign = bool(os.environ.get("BOKEH_SIGN_SESSIONS")) or secret_key is not None
    else:
        sign = sign_sessions
    if sign and not key_bytes:
        raise ValueError(
            "signed sessions need a secret key: pass secret_key=... or set BOKEH_SECRET_KEY "
            "to the server's key"
        )
    return key_bytes, sign


def new_session_id(secret_key: bytes | None, signed: bool) -> str:
    """A new random session id (44 characters, plus a signature when signed)."""
    return str(bokeh_token.generate_session_id(secret_key=secret_key, signed=signed))


def session_id_and_token(
    session_id: str,
    *,
    secret_key: bytes | None,
    signed: bool,
    expiration: int,
) -> str:
    """Mint a token for ``session_id`` valid for ``expiration`` seconds from now."""
    return str(
        bokeh_token.generate_jwt_token(
            ID(session_id), secret_key=secret_key, signed=signed, expiration=expiration
        )
    )


def versions_compatible(server_version: str) -> bool:
    """True when the server's bokeh has the same major.minor as ours (§8)."""
    return _minor(server_version) == _minor(BOKEH_VERSION)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


# -- documents (PROTOCOL.md §4.2) ------------------------------------------------


def _serialized(content: Any, buffers: Sequence[ReceivedBuffer]) -> Serialized[Any]:
    # Arrays view writable received buffers instead of being copied (_arrays.py).
    content, remaining = with_arrays(content, buffers)
    return Serialized(content, [Buffer(ID(bid), data) for bid, data in remaining])


def new_document_from_reply(content: Any, buffers: Sequence[ReceivedBuffer]) -> Document:
    """Build a Document from a PULL-DOC-REPLY content and its buffers.

    Raises:
        ValueError: the content has no ``doc``.
    """
    doc_json = _doc_json(content)
    try:
        return Document.from_json(_serialized(doc_json, buffers))
    except DeserializationError as exc:
        _raise_if_unknown_types(doc_json, exc)
        raise


def replace_document_from_reply(
    doc: Document,
    content: Any,
    buffers: Sequence[ReceivedBuffer],
    *,
    refuse_stale: Callable[[Model], Exception] | None = None,
) -> None:
    """Overwrite ``doc`` in place with a PULL-DOC-REPLY content (on its home thread).

    bokeh replaces every model object (the document keeps its identity, the models
    do not), so references a user holds to the old models stop syncing. With
    ``refuse_stale``, each old model left outside the document is moved into a
    tombstone document whose change callback raises ``refuse_stale(model)``: a
    write to a model that is no longer synced fails loudly instead of silently.

    Raises:
        UnknownModelTypes: the content names model types not defined here.
    """
    old_models = list(doc.models)
    doc_json = _doc_json(content)
    try:
        doc.replace_with_json(_serialized(doc_json, buffers))
    except DeserializationError as exc:
        _raise_if_unknown_types(doc_json, exc)
        raise
    if refuse_stale is None:
        return
    stale = [model for model in old_models if model.document is None]
    if not stale:
        return
    tombstone = Document()

    def refuse(event: DocumentChangedEvent) -> None:
        model = getattr(event, "model", None)
        if isinstance(model, Model):
            raise refuse_stale(model)

    tombstone.on_change(refuse)
    for model in stale:
        model._document = tombstone  # writes now reach ``refuse``, nothing else


def unknown_model_types(tree: Any) -> list[str]:
    """The model type names in a serialized document (or patch) that no class here has."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("name")
            if node.get("type") == "object" and "id" in node and isinstance(name, str):
                names.add(name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    known = Model.model_class_reverse_map
    return sorted(name for name in names if name not in known and name != "Figure")


def _raise_if_unknown_types(tree: Any, exc: DeserializationError) -> None:
    """Raise ``UnknownModelTypes`` (from ``exc``) when ``tree`` names unknown model types."""
    unknown = unknown_model_types(tree)
    if not unknown:
        return
    packages = sorted({name.split(".", 1)[0] for name in unknown if "." in name})
    shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
    if packages:
        names = ", ".join(f"'{package}'" for package in packages)
        imports = "; ".join(f"import {package}" for package in packages)
        hint = (
            f"they are defined by the package(s) {names}: `{imports}` in this process "
            "before pulling fixes it (install the package first if needed)"
        )
    else:
        hint = (
            "import the module that defines them in this process before pulling "
            "(the same custom models the server app imports)"
        )
    raise UnknownModelTypes(
        f"the server's document uses model types that are not defined in this process: "
        f"{shown}; {hint}",
        types=unknown,
        packages=packages,
    ) from exc


def _doc_json(content: Any) -> Any:
    if not isinstance(content, dict) or not isinstance(content.get("doc"), dict):
        raise ValueError("PULL-DOC-REPLY without a 'doc' object")
    return content["doc"]


class _WireEncoder(json.JSONEncoder):
    """Compact JSON for a serializer tree, as bokeh's ``PayloadEncoder`` writes it.

    A ``Buffer`` whose id is in ``refs`` (its bytes travel as a binary buffer of
    the same message) becomes ``{"id": ...}``; any other is inlined as base64.
    bokeh's own ``PayloadEncoder`` built without ``buffers=`` inlines every buffer
    before 3.9, so the bytes would travel twice: in the text and as a buffer.
    """

    def __init__(self, refs: frozenset[str]) -> None:
        super().__init__(sort_keys=False, allow_nan=False, separators=(",", ":"))
        self._refs = refs

    def default(self, o: Any) -> Any:
        if isinstance(o, Buffer):
            if str(o.id) in self._refs:
                return {"id": str(o.id)}
            return o.to_base64()
        return super().default(o)


def to_json_text(obj: Any, buffers: Sequence[BufferPair] = ()) -> str:
    """Compact JSON for a serializer tree.

    Buffers named in ``buffers`` become ``{"id": ...}`` references (the message
    carries their bytes as binary buffers); any other buffer is inlined as base64.
    """
    return _WireEncoder(frozenset(bid for bid, _ in buffers)).encode(obj)


@dataclass(frozen=True, slots=True)
class DocumentContent:
    """A PUSH-DOC for a document: its JSON text and binary buffers.

    Before bokeh 3.9 the server's PUSH-DOC handler ignores the message's binary
    buffers (it deserializes the bare ``doc`` object), so an array can reach it
    in a PUSH-DOC only as base64 text: a third bigger, and over the message size
    limit for a few million rows. There, the PUSH-DOC carries every array empty
    and ``restore`` holds a PATCH-DOC content that sets each attribute holding
    arrays to its real value, with the arrays as binary buffers; send it right
    after the PUSH-DOC, on the same connection. ``restore`` is None from 3.9 on,
    where the PUSH-DOC itself carries the buffers.
    """

    text: str
    buffers: list[BufferPair]
    restore: tuple[str, list[BufferPair]] | None = None


def document_content(doc: Document) -> DocumentContent:
    """The PUSH-DOC content for ``doc``: arrays travel as binary buffers on every version."""
    serialized: Any = doc.to_json()
    if isinstance(serialized, Serialized):  # bokeh >= 3.9: buffers are part of the payload
        buffers = [(str(b.id), b.to_bytes()) for b in serialized.buffers or []]
        return DocumentContent(to_json_text({"doc": serialized.content}, buffers), buffers)
    # Earlier 3.x: the tree holds deferred Buffers, which bokeh would inline as base64.
    restore: list[Any] = []
    stripped = _BufferStripper({str(model.id) for model in doc.models}, restore).strip(serialized)
    if not restore:
        return DocumentContent(to_json_text({"doc": stripped}), [])
    restore_buffers: dict[str, bytes] = {}
    _collect_buffers(restore, restore_buffers)
    pairs = list(restore_buffers.items())
    return DocumentContent(
        to_json_text({"doc": stripped}), [], (to_json_text({"events": restore}, pairs), pairs)
    )


class _BufferStripper:
    """Empties every buffer of a serialized document; records how to restore them.

    ``known`` are the ids of the models the document tracks (and so the server's
    copy of it will), as opposed to models only reachable through untyped values
    (an ``Any`` property), which neither side can refer to by id. Every object
    definition is kept, so the stripped document defines the same models. For
    each attribute of a known model whose value holds a buffer (outside nested
    known models, which get their own events), ``restore`` gets a ModelChanged
    event setting it to its original value, with known models as references.
    """

    def __init__(self, known: set[str], restore: list[Any]) -> None:
        self._known = known
        self._restore = restore

    def _is_known_definition(self, node: Any) -> bool:
        return _is_object_definition(node) and node["id"] in self._known

    def strip(self, node: Any) -> Any:
        if isinstance(node, list | tuple):  # the serializer writes map entries as tuples
            if _all_scalars(node):
                return node
            return [self.strip(item) for item in node]
        if not isinstance(node, dict):
            return node
        if self._is_known_definition(node):
            attributes: dict[str, Any] = {}
            for attr, value in node["attributes"].items():
                if self._holds_buffer(value):
                    self._restore.append(
                        {
                            "kind": "ModelChanged",
                            "model": {"id": node["id"]},
                            "attr": attr,
                            "new": self._as_references(value),
                        }
                    )
                attributes[attr] = self.strip(value)
            return {**node, "attributes": attributes}
        if node.get("type") == "bytes" and isinstance(node.get("data"), Buffer):
            return {"type": "bytes", "data": ""}
        if node.get("type") == "ndarray" and self._holds_buffer(node.get("array")):
            return {**node, "array": {"type": "bytes", "data": ""}, "shape": [0]}
        return {key: self.strip(value) for key, value in node.items()}

    def _holds_buffer(self, node: Any) -> bool:
        """True if ``node`` holds a Buffer outside any nested known model."""
        if isinstance(node, Buffer):
            return True
        if isinstance(node, list | tuple):
            return not _all_scalars(node) and any(self._holds_buffer(item) for item in node)
        if isinstance(node, dict):
            if self._is_known_definition(node):
                return False
            return any(self._holds_buffer(value) for value in node.values())
        return False

    def _as_references(self, node: Any) -> Any:
        """``node`` with each nested known model's definition replaced by a reference."""
        if isinstance(node, list | tuple):
            return [self._as_references(item) for item in node]
        if not isinstance(node, dict):
            return node
        if self._is_known_definition(node):
            return {"id": node["id"]}
        return {key: self._as_references(value) for key, value in node.items()}


def _is_object_definition(node: dict[str, Any]) -> bool:
    return (
        node.get("type") == "object"
        and isinstance(node.get("id"), str)
        and isinstance(node.get("attributes"), dict)
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _all_scalars(items: Sequence[Any]) -> bool:
    """True for a list of plain JSON scalars (a list column): nothing to walk into."""
    scalars = _SCALARS
    return all(type(item) in scalars for item in items)


def _collect_buffers(node: Any, out: dict[str, bytes]) -> None:
    if isinstance(node, Buffer):
        out.setdefault(str(node.id), node.to_bytes())
    elif isinstance(node, list | tuple):
        for item in node:
            _collect_buffers(item, out)
    elif isinstance(node, dict):
        for value in node.values():
            _collect_buffers(value, out)


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
        return ColumnDataChangedEvent(
            event.document, event.model, event.attr, setter=event.setter
        )
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


# -- document change events --------------------------------------------------------

EventKind = Literal["patch", "callback_added", "callback_removed", "other"]


def classify_event(event: DocumentChangedEvent) -> EventKind:
    """What a document change event means to a session."""
    if isinstance(event, DocumentPatchedEvent):
        return "patch"
    if isinstance(event, SessionCallbackAdded):
        return "callback_added"
    if isinstance(event, SessionCallbackRemoved):
        return "callback_removed"
    return "other"


def describe_model(model: Model) -> str:
    """A model as a user knows it: ``Slider 'volume' (p1024)``, or ``Slider p1024``."""
    name = getattr(model, "name", None)
    kind = type(model).__name__
    return f"{kind} {name!r} ({model.id})" if name else f"{kind} {model.id}"


def describe_event(event: DocumentChangedEvent) -> str:
    """A document change as a user knows it, e.g. ``change of Slider 'volume' (p1).value``."""
    model = getattr(event, "model", None)
    attr = getattr(event, "attr", None)
    if isinstance(model, Model):
        where = describe_model(model) + (f".{attr}" if attr else "")
        return f"change of {where}"
    return f"document change ({type(event).__name__})"


def event_setter(event: DocumentChangedEvent) -> object:
    """The setter a change was made with (None for a plain assignment)."""
    return event.setter


def event_callback(event: DocumentChangedEvent) -> SessionCallback:
    """The session callback object of a SessionCallbackAdded/Removed event."""
    callback: SessionCallback = event.callback  # type: ignore[attr-defined]
    return callback


def document_session_callbacks(doc: Document) -> list[SessionCallback]:
    """Session callbacks added to ``doc`` before a session was attached."""
    return list(doc.session_callbacks)


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """How to schedule one client-side session callback.

    ``kind`` is "periodic", "timeout" or "next_tick"; ``seconds`` is the period or
    the delay; ``function`` is bokeh's wrapped callable (sets curdoc, and removes a
    one-shot callback from the document before running it).
    """

    kind: Literal["periodic", "timeout", "next_tick"]
    seconds: float
    function: Callable[[], Any]


def callback_spec(callback: SessionCallback) -> CallbackSpec:
    """Describe a bokeh session callback for scheduling on a loop."""
    function: Callable[[], Any] = callback.callback
    if isinstance(callback, PeriodicCallback):
        return CallbackSpec("periodic", callback.period / 1000.0, function)
    if isinstance(callback, TimeoutCallback):
        return CallbackSpec("timeout", callback.timeout / 1000.0, function)
    if isinstance(callback, NextTickCallback):
        return CallbackSpec("next_tick", 0.0, function)
    raise TypeError(f"unknown session callback type {type(callback).__name__}")


# -- display --------------------------------------------------------------------


def server_session_script(model: Model | None, session_id: str, app_url: str) -> str:
    """The HTML ``<script>`` that embeds a live server session (BokehJS autoload)."""
    from bokeh.embed import server_session

    return str(server_session(model=model, session_id=ID(session_id), url=app_url))


def open_browser(url: str, browser: str | None, new: Literal["tab", "window"]) -> None:
    """Open ``url`` in a browser the way ``bokeh.client.show_session`` does."""
    from bokeh.util.browser import get_browser_controller

    controller = get_browser_controller(browser=browser)
    controller.open(url, new=2 if new == "tab" else 1)


def add_root_if_missing(doc: Document, obj: Model) -> None:
    """Add ``obj`` to ``doc``'s roots unless it is one already (ClientSession.show)."""
    if obj not in doc.roots:
        doc.add_root(obj)
