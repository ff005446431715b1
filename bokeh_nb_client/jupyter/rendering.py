"""Rendering of session state for the notebook: status, session lists, colours.

* :func:`render_status` is the one place that renders a session's status (the
  magics display whatever it returns);
* :func:`render_sessions` renders the table of ``%bokeh_sessions``;
* :data:`STATE_COLOURS` is the one palette of session states, used here and by
  the status panel's rows (:mod:`.panel_rows`).

Pure functions of status snapshots: nothing here talks to the server or keeps
state. Live inline views are in :mod:`.display` (their markup) and :mod:`.views`
(which views are shown, and how they follow their sessions).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from .. import _bokeh
from ..status import SessionState, SessionStatus

__all__ = [
    "STATE_COLOURS",
    "Rendered",
    "SessionLike",
    "SessionRow",
    "render_sessions",
    "render_status",
    "short_id",
    "state_colour",
]

#: Characters of a session id shown to users: enough to tell sessions apart.
SHORT_ID_CHARS = 8


class SessionLike(Protocol):
    """What rendering needs of a session: ``ClientSession`` and ``AsyncClientSession`` fit."""

    @property
    def id(self) -> str: ...

    @property
    def app_url(self) -> str: ...

    @property
    def status(self) -> SessionStatus: ...

    @property
    def document(self) -> _bokeh.Document | None: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    """Something to display: plain text for terminals and logs, HTML for notebooks.

    IPython's ``display()`` uses :meth:`_repr_mimebundle_`; ``str()`` gives the text.
    """

    text: str
    html: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def _repr_mimebundle_(
        self, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        return {"text/plain": self.text, "text/html": self.html}, self.metadata

    def __str__(self) -> str:
        return self.text


def short_id(session_id: str) -> str:
    """The first characters of a session id, with an ellipsis: ``"kgFCsj0p…"``."""
    return session_id[:SHORT_ID_CHARS] + "…" if len(session_id) > SHORT_ID_CHARS else session_id


def _server_and_app(app_url: str) -> tuple[str, str]:
    parts = urlsplit(app_url)
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def _root_labels(session: SessionLike) -> list[str]:
    doc = session.document
    if doc is None:
        return []
    return [
        f"{root.name} ({type(root).__name__})" if root.name else type(root).__name__
        for root in doc.roots
    ]


#: The colour of each session state wherever a state is shown (text on white:
#: every colour has a contrast ratio of at least 4.5).
STATE_COLOURS: Mapping[SessionState, str] = {
    SessionState.CONNECTED: "#2e7d32",
    SessionState.CONNECTING: "#b26a00",
    SessionState.RECONNECTING: "#b26a00",
    SessionState.NOT_CONNECTED: "#757575",
    SessionState.CLOSED: "#757575",
    SessionState.DISCONNECTED: "#c62828",
    SessionState.ERROR: "#c62828",
}


def state_colour(state: SessionState) -> str:
    """The colour of ``state`` (:data:`STATE_COLOURS`)."""
    return STATE_COLOURS.get(state, "#757575")


def render_status(session: SessionLike, name: str | None = None) -> Rendered:
    """Render one session's status: server, app, short id, roots, state.

    Args:
        session: the session to describe (read on the calling thread, which must be
            the document's home thread: the kernel's, in a notebook).
        name: the variable the session is bound to, if any.

    Returns:
        A :class:`Rendered` with a concise text and an HTML table.
    """
    status = session.status
    server, app = _server_and_app(session.app_url)
    roots = _root_labels(session)
    version = f" (bokeh {status.server_version})" if status.server_version else ""
    title = f"Bokeh session {name!r}" if name else "Bokeh session"
    rows: list[tuple[str, str]] = [
        ("server", server + version),
        ("app", app),
        ("session", short_id(session.id)),
        ("roots", f"{len(roots)}: {', '.join(roots)}" if roots else "0"),
        ("state", status.state.value),
    ]
    if status.last_error:
        # once (re)connected, the error that ended the previous connection is history
        label = "earlier error" if status.state is SessionState.CONNECTED else "last error"
        rows.append((label, status.last_error))
    width = max(len(key) for key, _ in rows)
    text = "\n".join([title, *(f"  {key:<{width}}  {value}" for key, value in rows)])

    colour = state_colour(status.state)
    cells = "".join(
        f'<tr><th style="text-align:left;padding:0 1em 0 0">{html.escape(key)}</th>'
        f'<td style="text-align:left">{_html_value(key, value, colour)}</td></tr>'
        for key, value in rows
    )
    markup = (
        f'<div class="bnc-status" data-state="{html.escape(status.state.name.lower())}">'
        f"<strong>{html.escape(title)}</strong>"
        f'<table style="margin:0.2em 0 0 0">{cells}</table></div>'
    )
    return Rendered(text, markup)


def _html_value(key: str, value: str, colour: str) -> str:
    escaped = html.escape(value)
    if key == "state":
        return f'<span style="color:{colour};font-weight:bold">{escaped}</span>'
    if key == "session":
        return f"<code>{escaped}</code>"
    return escaped


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One line of ``%bokeh_sessions``: a session and the names it is bound to."""

    session: SessionLike
    names: tuple[str, ...]
    #: "sync" (a ClientSession), "async" (an AsyncClientSession bound to a name), or
    #: "-" (not bound to any name in this kernel, so its kind is not known here)
    kind: Literal["sync", "async", "-"]


def render_sessions(rows: Sequence[SessionRow]) -> Rendered:
    """Render the sessions of this kernel as a table (``%bokeh_sessions``)."""
    if not rows:
        message = "No open Bokeh sessions in this kernel."
        return Rendered(message, f"<p>{html.escape(message)}</p>")
    header = ("name", "kind", "state", "app", "session", "roots")
    table: list[tuple[str, ...]] = []
    for row in rows:
        status = row.session.status
        table.append(
            (
                ", ".join(row.names) or "-",
                row.kind,
                status.state.value,
                row.session.app_url,
                short_id(row.session.id),
                str(len(_root_labels(row.session))),
            )
        )
    widths = [max(len(line[i]) for line in (header, *table)) for i in range(len(header))]
    text_lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (header, *table)
    ]
    head = "".join(f'<th style="text-align:left">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="text-align:left">{html.escape(c)}</td>' for c in line)
        + "</tr>"
        for line in table
    )
    markup = (
        f'<table class="bnc-sessions"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    return Rendered("\n".join(text_lines), markup)
