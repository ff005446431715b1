"""``SessionRowView``: the widgets of one session in the status panel, and how they render.

A row shows what the session is (names, server, app, short session id, kind),
how it is doing (state with the reason of an error, the server's bokeh version,
roots and models, traffic, round trip, last activity, last error) and its action
buttons (:data:`ACTIONS`). Which buttons are enabled follows the state and the
actions running now. A row only renders and reports clicks: what a click does is
up to its owner (:mod:`.panel_actions`, through the panel). Built and changed on
the kernel thread only; every text goes through :func:`.panel_text.redact`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from ..client import ClientSession
from ..session import AsyncClientSession
from ..status import SessionState, SessionStatus
from .panel_text import (
    ENDED,
    LIVE,
    app_url_of,
    esc,
    note_html,
    now,
    redact,
    server_and_app,
    state_text,
    stats_text,
)
from .rendering import render_status, short_id, state_colour
from .sessions import RowKind, Steerable

__all__ = ["ACTIONS", "SessionRowView", "row_closed"]

#: The actions of a row, in button order.
ACTIONS = ("pull", "push", "show", "close", "reconnect")

_LABELS = {
    "pull": "Pull",
    "push": "Push",
    "show": "Show",
    "close": "Close",
    "reconnect": "Reconnect",
}
_RUNNING_LABELS = {
    "pull": "Pulling…",
    "push": "Pushing…",
    "show": "Showing…",
    "close": "Closing…",
    "reconnect": "Reconnecting…",
}
_TOOLTIPS = {
    "pull": "Replace the kernel's document with the server's",
    "push": "Replace the server's document with the kernel's",
    "show": "Show a live view of this session below the panel",
    "close": "Close this session (the kernel's document stays usable)",
    "reconnect": (
        "Reconnect this session (same id, URL and arguments) after its connection ended, "
        "and resync its document"
    ),
}
_UNSTEERABLE = (
    "The panel cannot tell which loop runs this session (it is bound to no name in this "
    "kernel); bind it to a variable and refresh the panel"
)


class SessionRowView(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The widgets of one session: what it is, how it is doing, and its buttons.

    Shown inside a :class:`StatusPanel`, and on its own by ``%bokeh_pull`` and
    ``%bokeh_push`` (the same widget: both views follow the session). Built and
    changed on the kernel thread only.

    Args:
        status: the first snapshot to show.
        session: the session the buttons act on, or None for a row that only
            renders snapshots.
        names: the names the session is bound to in this kernel.
        kind: "sync" (a ClientSession), "async" (an AsyncClientSession) or "-"
            (unknown here: the buttons are disabled).
        on_action: called with ``(row, action)`` when a button is clicked.
    """

    def __init__(
        self,
        status: SessionStatus,
        *,
        session: Steerable | None = None,
        names: Sequence[str] = (),
        kind: RowKind = "-",
        on_action: Callable[[SessionRowView, str], None] | None = None,
    ) -> None:
        self._title = widgets.HTML()
        self._stats = widgets.HTML()
        self._error = widgets.HTML()
        self._message = widgets.HTML()
        self._buttons = {
            action: widgets.Button(
                description=_LABELS[action],
                tooltip=_TOOLTIPS[action],
                layout=widgets.Layout(width="auto"),
            )
            for action in ACTIONS
        }
        for action, button in self._buttons.items():
            button.add_class(f"bnc-action-{action}")
            button.on_click(lambda _button, action=action: self._clicked(action))
        self._title.add_class("bnc-row-title")
        self._stats.add_class("bnc-row-stats")
        self._error.add_class("bnc-row-error")
        self._message.add_class("bnc-row-message")
        actions = widgets.HBox([*self._buttons.values(), self._message])
        super().__init__(
            children=[self._title, self._stats, self._error, actions],
            layout=widgets.Layout(
                border="1px solid #ddd", padding="2px 6px", margin="2px 0", width="auto"
            ),
        )
        self.add_class("bnc-panel-row")
        self._session = session
        self._names = tuple(names)
        self._kind = kind
        self._on_action = on_action
        self._running: set[str] = set()
        #: every error the row has seen, oldest first: (time, text)
        self._errors: list[tuple[str, str]] = []
        #: the error a reconnect cleared: not shown again until a new one arrives
        self._cleared: str | None = None
        self._shown_state: SessionState | None = None
        self._status = status
        self.render(status)

    # -- what the row shows ----------------------------------------------------------

    @property
    def session(self) -> Steerable | None:
        """The session the buttons act on (None for a render-only row)."""
        return self._session

    @property
    def inner(self) -> AsyncClientSession | None:
        """The AsyncClientSession behind :attr:`session` (identity of the row's session)."""
        session = self._session
        return session.async_session if isinstance(session, ClientSession) else session

    @property
    def status(self) -> SessionStatus:
        """The snapshot the row shows."""
        return self._status

    @property
    def names(self) -> tuple[str, ...]:
        """The names the session is bound to in this kernel."""
        return self._names

    @property
    def kind(self) -> RowKind:
        """One of "sync", "async" or "-" (see the class docstring)."""
        return self._kind

    @property
    def buttons(self) -> Mapping[str, widgets.Button]:
        """The action buttons by action name (see :data:`ACTIONS`)."""
        return dict(self._buttons)

    @property
    def title(self) -> widgets.HTML:
        """Names, server, app, session id and state."""
        return self._title

    @property
    def stats(self) -> widgets.HTML:
        """Version, roots and models, traffic, round trip, last activity."""
        return self._stats

    @property
    def errors(self) -> tuple[tuple[str, str], ...]:
        """Every error this row has shown, oldest first, as ``(time, text)``.

        A session that reconnects no longer shows its old error in red; the error
        stays here, and under "earlier errors" in the row.
        """
        return tuple(self._errors)

    @property
    def error(self) -> widgets.HTML:
        """The row's error line (empty while there is no current error)."""
        return self._error

    @property
    def message(self) -> widgets.HTML:
        """The outcome of the last action."""
        return self._message

    @property
    def running(self) -> frozenset[str]:
        """The actions running now."""
        return frozenset(self._running)

    def point_at(self, session: Steerable, *, kind: RowKind) -> None:
        """Make the row act on (and describe) ``session`` from now on.

        For another ClientSession around the same AsyncClientSession (the row's
        session is known by its AsyncClientSession, :attr:`inner`).
        """
        self._session = session
        self._kind = kind
        self.render(session.status)

    def set_names(self, names: Sequence[str], kind: RowKind | None = None) -> None:
        """Update the names (and kind) the row shows."""
        self._names = tuple(names)
        if kind is not None:
            self._kind = kind
        self.render(self._status)

    def render(self, status: SessionStatus) -> None:
        """Show ``status``. Kernel thread only."""
        self._status = status
        session = self._session
        app_url = session.app_url if session is not None else app_url_of(status)
        server, app = server_and_app(app_url)
        colour = state_colour(status.state)
        label = ", ".join(self._names) or "(unnamed)"
        kind = {"sync": "ClientSession", "async": "AsyncClientSession"}.get(self._kind, "")
        self._title.value = (
            f'<span class="bnc-names" title="{esc(kind)}"><b>{esc(label)}</b></span> '
            f'<span class="bnc-server">{esc(server)}</span>'
            f'<span class="bnc-app"><b>{esc(app)}</b></span> · session '
            f'<code class="bnc-session-id" title="{esc(status.session_id)}">'
            f"{esc(short_id(status.session_id))}</code> · "
            f'<span class="bnc-state" data-state="{status.state.name.lower()}" '
            f'style="color:{colour};font-weight:bold">{esc(state_text(status))}</span>'
        )
        self._stats.value = (
            f'<span style="font-size:90%;color:#555">{esc(stats_text(status))}</span>'
        )
        self._show_error(status)
        self._update_buttons()

    def _show_error(self, status: SessionStatus) -> None:
        """The current error in red; errors a reconnect cleared under "earlier errors"."""
        error = status.last_error
        if error and (not self._errors or self._errors[-1][1] != error):
            self._errors.append((now(), error))
        previous = self._shown_state
        self._shown_state = status.state
        if status.state is SessionState.CONNECTED and previous is not SessionState.CONNECTED:
            self._cleared = error  # reconnected: the error that ended it is history
        current = error if error and error != self._cleared else None
        parts: list[str] = []
        if current and status.state not in ENDED:  # an ended state already says it
            parts.append(
                f'<span style="font-size:90%;color:#c62828">last error: {esc(current)}</span>'
            )
        earlier = [entry for entry in self._errors if entry[1] != current]
        if earlier and status.state is SessionState.CONNECTED:
            items = "".join(f"<li>{esc(at)}: {esc(text)}</li>" for at, text in earlier)
            parts.append(
                f'<details class="bnc-earlier-errors" style="font-size:90%;color:#555">'
                f"<summary>earlier errors ({len(earlier)})</summary><ul>{items}</ul></details>"
            )
        self._error.value = "".join(parts)
        self._error.layout.display = None if parts else "none"  # no empty line

    def set_running(self, action: str, running: bool) -> None:
        """Mark ``action`` as running (its button disabled) or finished."""
        if running:
            self._running.add(action)
        else:
            self._running.discard(action)
        self._update_buttons()

    def say(self, text: str, *, error: bool = False) -> None:
        """Show the outcome of an action next to the buttons."""
        colour = "#c62828" if error else "#2e7d32"
        kind = "error" if error else "ok"
        self._message.value = (
            note_html(text, "bnc-outcome", kind=kind, colour=colour) if text else ""
        )

    def _update_buttons(self) -> None:
        state = self._status.state
        session = self._session
        has_document = session is not None and session.document is not None
        steerable = self._on_action is not None and session is not None and self._kind != "-"
        allowed = {
            "pull": state in LIVE,
            "push": state in LIVE and has_document,
            "show": state is SessionState.CONNECTED,
            "close": state is not SessionState.CLOSED,
            "reconnect": state in ENDED,
        }
        busy = bool(self._running)
        for action, button in self._buttons.items():
            running = action in self._running
            # Close stays available while a pull or push runs, unless a reconnect
            # is opening the session's new connection.
            blocked = busy and (action != "close" or "reconnect" in self._running)
            button.disabled = not steerable or running or blocked or not allowed[action]
            button.description = _RUNNING_LABELS[action] if running else _LABELS[action]
            button.tooltip = _TOOLTIPS[action] if steerable or session is None else _UNSTEERABLE

    def detach(self) -> None:
        """Stop acting: disable the buttons for good (the owning panel closed)."""
        self._on_action = None
        self._update_buttons()

    def _clicked(self, action: str) -> None:
        if self._on_action is not None:
            self._on_action(self, action)

    # -- display -------------------------------------------------------------------------

    def _fallback(self) -> tuple[str, str]:
        session = self._session
        name = self._names[0] if self._names else None
        if session is not None:
            rendered = render_status(session, name)
            return rendered.text, rendered.html
        text = f"Bokeh session {short_id(self._status.session_id)}: {self._status.state.value}"
        return text, f"<p>{html.escape(text)}</p>"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget, plus a text and HTML summary for front ends without widgets."""
        bundle: dict[str, Any] = dict(super()._repr_mimebundle_(**kwargs) or {})
        text, markup = self._fallback()
        bundle["text/plain"] = redact(text)
        bundle["text/html"] = redact(markup)
        return bundle


def row_closed(row: SessionRowView) -> bool:
    """Whether the row's session is closed now (its latest snapshot may not be shown yet)."""
    session = row.session
    status = session.status if session is not None else row.status
    return status.state is SessionState.CLOSED
