"""Documents on the wire: pull replies into Documents, Documents into PUSH-DOC
contents, the JSON encoder with binary buffers, and unknown model types.

Part of the bokeh adapter (``bokeh_nb_client._bokeh``): the only code that
touches bokeh's serialization internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bokeh.core.serialization import (
    Buffer,
    DeserializationError,
    Serialized,
)
from bokeh.core.types import ID
from bokeh.document import Document
from bokeh.document.events import (
    DocumentChangedEvent,
)
from bokeh.model import Model

from .._arrays import with_arrays
from ..exceptions import UnknownModelTypes

log = logging.getLogger(__name__)

BufferPair = tuple[str, bytes]
ReceivedBuffer = tuple[str, bytes | memoryview]

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
