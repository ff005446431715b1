"""``ServerBrowser``: the status panel's browser of Bokeh servers.

Enter a server URL, list its apps (:func:`.browse.list_apps`, blocking HTTP, run
in a worker thread so the kernel's loop stays free), and open a session on one of
them: a new one, or an existing session id to attach to. An opened session is
pulled, bound to a free variable name (the app's name: ``basic``, ``basic_2``...)
in the magics' registry and the notebook namespace, and handed to the panel to
follow. Every step is a task the panel owns (:class:`.panel_actions.OwnedTasks`);
failures are explained in the browser's message line and logged.
"""

from __future__ import annotations

import asyncio
import json
import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import ipywidgets as widgets

from ..client import ClientSession
from ..discovery import AppInfo, ServerListing, list_apps, normalize_server_url
from ..protocol import urls
from ._ipython import get_ipython
from .panel_actions import OwnedTasks, drive, log_failure
from .panel_text import esc, note_html, now, redact
from .rendering import short_id

__all__ = ["ServerBrowser"]


class ServerBrowser(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The URL and session id fields, the "List apps" button, the apps and a message line.

    Built and changed on the kernel thread only.

    Attributes:
        url_text: the server URL field.
        session_id_text: the session id field (empty: open new sessions).
        list_button: the "List apps" button.
        message: what the browser has to say (errors of unreachable or non-Bokeh URLs).

    Args:
        tasks: the owner of the browser's tasks (the panel's).
        track: called with ``(session, name)`` for each session the browser opens.
        url: the server URL to offer (default: the extension's
            ``BokehClient.default_url`` when loaded).
    """

    def __init__(
        self,
        tasks: OwnedTasks,
        track: Callable[[ClientSession, str], object],
        url: str | None = None,
    ) -> None:
        from . import current_config

        self._tasks = tasks
        self._track = track
        self._listing: ServerListing | None = None
        config = current_config()
        default_url = url if url is not None else (str(config.default_url) if config else "")
        self.url_text = widgets.Text(
            value=redact(default_url),
            placeholder="http://localhost:5006",
            description="Server",
            layout=widgets.Layout(width="28em"),
        )
        self.url_text.add_class("bnc-browse-url")
        self.list_button = widgets.Button(
            description="List apps",
            tooltip="List the apps of this Bokeh server (its index page and /<app>/metadata)",
            layout=widgets.Layout(width="auto"),
        )
        self.list_button.add_class("bnc-browse-list")
        self.list_button.on_click(lambda _button: tasks.on_thread(self.start_listing))
        self.session_id_text = widgets.Text(
            placeholder="empty: a new session; or the id of an existing one to attach to",
            description="Session id",
            layout=widgets.Layout(width="40em"),
        )
        self.session_id_text.add_class("bnc-browse-session-id")
        self.message = widgets.HTML()
        self.message.add_class("bnc-browse-message")
        self._apps_box = widgets.VBox()
        self._apps_box.add_class("bnc-browse-apps")
        self._app_buttons: dict[str, widgets.Button] = {}
        super().__init__(
            [
                widgets.HTML("<b>Browse a Bokeh server</b>"),
                widgets.HBox([self.url_text, self.list_button]),
                self.session_id_text,
                self.message,
                self._apps_box,
            ],
            layout=widgets.Layout(border="1px solid #ddd", padding="2px 6px", margin="4px 0"),
        )
        self.add_class("bnc-browse")

    # -- what it shows ---------------------------------------------------------------------

    @property
    def listing(self) -> ServerListing | None:
        """The apps of the last server browsed successfully, if any."""
        return self._listing

    @property
    def app_buttons(self) -> Mapping[str, widgets.Button]:
        """The Pull button of each listed app, by app name."""
        return dict(self._app_buttons)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` (redacted) in the message line."""
        colour = "#c62828" if error else "#555"
        kind = "error" if error else "info"
        self.message.value = note_html(text, "bnc-browse-note", kind=kind, colour=colour)

    # -- listing -------------------------------------------------------------------------

    def start_listing(self) -> None:
        """List the apps of the server in the URL field, as the button does."""
        if self._tasks.closed:
            return
        try:
            url = normalize_server_url(self.url_text.value)
        except ValueError as exc:
            self.say(str(exc), error=True)
            return
        self.url_text.value = url  # credentials typed into the URL leave the widget state
        self.list_button.disabled = True
        self.list_button.description = "Listing…"
        self.say(f"listing the apps of {url} …")
        self._tasks.spawn(self._list(url), f"list {url}")

    async def _list(self, url: str) -> None:
        try:
            listing = await asyncio.to_thread(list_apps, url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by log_failure
            log_failure(f"listing the apps of {url}", exc)
            self._listing = None
            self._show_apps(())
            self.say(_browse_failure(url, exc), error=True)
        else:
            self._listing = listing
            self._show_apps(listing.apps)
            count = len(listing.apps)
            self.say(f"{count} app{'s' if count != 1 else ''} at {listing.url} ({listing.note})")
        finally:
            self.list_button.disabled = False
            self.list_button.description = "List apps"

    def _show_apps(self, apps: Sequence[AppInfo]) -> None:
        self._app_buttons = {}
        lines = []
        for info in apps:
            button = widgets.Button(
                description="Pull",
                tooltip=f"Open a session of {info.name} and pull its document "
                "(the session id above, if given, is joined instead of a new one)",
                layout=widgets.Layout(width="auto"),
            )
            button.add_class("bnc-browse-pull")
            button.on_click(
                lambda _button, info=info: self._tasks.on_thread(lambda: self._start_open(info))
            )
            self._app_buttons[info.name] = button
            metadata = json.dumps(dict(info.metadata))[:200] if info.metadata else ""
            label = widgets.HTML(
                f'<span class="bnc-app-name"><b>{esc(info.name)}</b></span> '
                f'<span style="color:#555">{esc(info.url)}</span>'
                + (f' <code title="app metadata">{esc(metadata)}</code>' if metadata else "")
            )
            line = widgets.HBox([button, label])
            line.add_class("bnc-browse-app")
            lines.append(line)
        self._apps_box.children = tuple(lines)

    # -- opening -------------------------------------------------------------------------

    def open_app(self, app: str, session_id: str | None = None) -> None:
        """Open a session on a listed app (by name) or an app URL, as its Pull button does."""
        if session_id is not None:
            self.session_id_text.value = session_id
        listed = {info.name: info for info in (self._listing.apps if self._listing else ())}
        info = listed.get(app) or AppInfo(name=_app_name(app), url=app)
        self._start_open(info)

    def _start_open(self, info: AppInfo) -> None:
        if self._tasks.closed:
            return
        button = self._app_buttons.get(info.name)
        if button is not None:
            if button.disabled:
                return
            button.disabled = True
            button.description = "Pulling…"
        session_id = self.session_id_text.value.strip() or None
        what = f"session {short_id(session_id)}" if session_id else "a new session"
        self.say(f"opening {what} of {info.name} …")
        self._tasks.spawn(self._open(info, session_id), f"open {info.name}")

    async def _open(self, info: AppInfo, session_id: str | None) -> None:
        from . import registry

        try:
            websocket_url = urls.websocket_url_for_server_url(info.url)
            session = ClientSession(session_id, websocket_url, **_session_options())
            await self._pull_or_discard(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown in the panel and logged by log_failure
            log_failure(f"opening a session of {info.url}", exc)
            self.say(
                f"could not open a session of {info.name}: {type(exc).__name__}: {exc}",
                error=True,
            )
        else:
            name = _free_name(info.name)
            registry.bind(name, session)
            shell = get_ipython()
            if shell is not None:
                shell.push({name: session})  # type: ignore[no-untyped-call]
            self._track(session, name)
            self.say(f"opened {name} = session {short_id(session.id)} of {info.name} at {now()}")
        finally:
            button = self._app_buttons.get(info.name)
            if button is not None:
                button.disabled = False
                button.description = "Pull"

    async def _pull_or_discard(self, session: ClientSession) -> None:
        """Pull ``session``; close it again if that fails (or is cancelled)."""
        try:
            await drive(session, lambda s: s.pull())
        except asyncio.CancelledError:
            self._tasks.close_in_background(session)
            raise
        except Exception:
            await drive(session, lambda s: s.close())
            raise


# -- helpers -------------------------------------------------------------------------------


def _session_options() -> dict[str, Any]:
    """Options for sessions the browser opens: the extension's configuration, if loaded."""
    from . import current_config

    config = current_config()
    return config.session_options() if config is not None else {}


def _browse_failure(url: str, exc: Exception) -> str:
    from ..discovery import DiscoveryError
    from ..exceptions import ConnectError, Timeout

    if isinstance(exc, Timeout):
        return f"no answer from {url} within {exc.seconds:g} s: is it a Bokeh server?"
    if isinstance(exc, ConnectError | DiscoveryError):
        return f"{exc}"
    return f"cannot list the apps of {url}: {type(exc).__name__}: {exc}"


def _app_name(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] or "app"


def _free_name(app: str) -> str:
    """A variable name for a session of ``app`` bound nowhere yet: ``basic``, ``basic_2``..."""
    from . import registry

    base = re.sub(r"\W", "_", app).strip("_") or "app"
    if base[0].isdigit() or keyword.iskeyword(base):
        base = f"app_{base}"
    shell = get_ipython()
    taken = set(shell.user_ns) if shell is not None else set()
    candidate, number = base, 1
    while candidate in registry or candidate in taken:
        number += 1
        candidate = f"{base}_{number}"
    return candidate
