"""The one place that touches bokeh's internals (a package of three modules).

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

Modules: ``documents`` (pull replies, PUSH-DOC contents, the wire encoder),
``patches`` (outgoing and incoming PATCH-DOC contents), and this one (versions,
tokens and session ids, change events, session callbacks, display). Everything
else in the client imports from here, never from bokeh's serialization classes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import bokeh
from bokeh.core.types import ID
from bokeh.document import Document
from bokeh.document.events import (
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

from .documents import (
    BufferPair,
    DocumentContent,
    ReceivedBuffer,
    document_content,
    new_document_from_reply,
    replace_document_from_reply,
    to_json_text,
    unknown_model_types,
)
from .patches import (
    EncodedEvents,
    PatchOutcome,
    apply_patch,
    encode_events,
    merge_encoded_events,
    patch_content_json,
)

__all__ = [
    "BOKEH_VERSION",
    "DEFAULT_SERVER_HTTP_URL",
    "BufferPair",
    "CallbackSpec",
    "Document",
    "DocumentContent",
    "EncodedEvents",
    "ErrorReason",
    "Model",
    "PatchOutcome",
    "ReceivedBuffer",
    "apply_patch",
    "callback_spec",
    "classify_event",
    "document_content",
    "encode_events",
    "error_reason",
    "merge_encoded_events",
    "new_document_from_reply",
    "patch_content_json",
    "replace_document_from_reply",
    "resolve_signing",
    "server_session_script",
    "session_id_and_token",
    "to_json_text",
    "unknown_model_types",
    "versions_compatible",
]

if TYPE_CHECKING:
    from bokeh.client.states import ErrorReason

log = logging.getLogger(__name__)

BOKEH_VERSION: str = bokeh.__version__
DEFAULT_SERVER_HTTP_URL: str = _BOKEH_DEFAULT_URL


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
