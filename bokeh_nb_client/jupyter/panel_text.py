"""The texts of the status panel: scrubbed of secrets, and status snapshots as words.

Secrets: session snapshots carry no token, key or cookie, and every text the
panel shows (URLs, errors, messages) also goes through :func:`redact`, which
removes ``user:password@`` parts, Bokeh tokens and the configured secret key, so
none reaches widget state. Pure functions; no widgets.
"""

from __future__ import annotations

import datetime
import html
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from ..protocol import urls
from ..status import SessionState, SessionStatus

__all__ = [
    "ENDED",
    "LIVE",
    "app_url_of",
    "clock",
    "esc",
    "note_html",
    "now",
    "redact",
    "server_and_app",
    "size",
    "state_text",
    "stats_text",
]

#: States in which the connection ended and Reconnect may reopen it.
ENDED = (SessionState.ERROR, SessionState.DISCONNECTED)
#: States in which the session is (or is becoming) usable.
LIVE = (
    SessionState.NOT_CONNECTED,
    SessionState.CONNECTING,
    SessionState.CONNECTED,
    SessionState.RECONNECTING,
)

# -- secrets -------------------------------------------------------------------------

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")
# A Bokeh token: base64url JSON ("eyJ...") optionally followed by ".signature".
_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+)*")


def _secret_key() -> str | None:
    from . import current_config

    config = current_config()
    if config is not None:
        return config.secret_key()
    return os.environ.get("BOKEH_SECRET_KEY") or None


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without credentials: ``user:password@`` in URLs, Bokeh tokens, ``secrets``.

    The configured secret key (``BokehClient.secret_key_env``, else
    ``BOKEH_SECRET_KEY``) is always one of the secrets.
    """
    for secret in (*secrets, _secret_key()):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1***@", text)
    return _TOKEN.sub("<token>", text)


def esc(text: str) -> str:
    """``text`` redacted, then escaped for HTML."""
    return html.escape(redact(text))


def note_html(text: str, css_class: str, *, kind: str, colour: str) -> str:
    """``text`` (redacted, escaped) as a coloured span with a class and a ``data-kind``."""
    return f'<span class="{css_class}" data-kind="{kind}" style="color:{colour}">{esc(text)}</span>'


# -- formatting --------------------------------------------------------------------------


def size(count: int) -> str:
    """A byte count for people: ``950 B``, ``2.1 kB``."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def clock(timestamp: float | None) -> str:
    """The local time of day of ``timestamp`` (``"never"`` for None)."""
    if timestamp is None:
        return "never"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def now() -> str:
    """The local time of day now."""
    return datetime.datetime.now().strftime("%H:%M:%S")


def server_and_app(app_url: str) -> tuple[str, str]:
    """The server (without credentials) and the app path of an app URL."""
    parts = urlsplit(app_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", parts.path or "/"


def app_url_of(status: SessionStatus) -> str:
    """The app URL of a snapshot's websocket URL (the URL itself if it is not one)."""
    try:
        return urls.server_url_for_websocket_url(status.url).rstrip("/")
    except ValueError:
        return status.url


def state_text(status: SessionStatus) -> str:
    """The state of a snapshot, with the reconnect attempt or the reason of an end."""
    state = status.state
    if state is SessionState.RECONNECTING:
        attempt = status.extra.get("reconnect_attempt")
        return f"reconnecting (attempt {attempt})" if attempt else "reconnecting"
    if state in ENDED and status.last_error:
        return f"{state.value}: {status.last_error}"
    return str(state.value)


def stats_text(status: SessionStatus) -> str:
    """Version, roots and models, traffic, round trip, last activity, reconnects."""
    parts = [
        f"bokeh {status.server_version}" if status.server_version else "bokeh ?",
        f"{status.roots} roots, {status.models} models",
        f"in {status.messages_in} msgs ({size(status.bytes_in)})",
        f"out {status.messages_out} msgs ({size(status.bytes_out)})",
        f"rtt {status.last_rtt * 1000:.1f} ms" if status.last_rtt is not None else "rtt -",
        f"last activity {clock(status.last_activity)}",
    ]
    reconnects = status.extra.get("reconnects")
    if reconnects:
        parts.append(f"reconnected {reconnects} times")
    if status.extra.get("session_recreated"):
        parts.append("server session was recreated")
    return " · ".join(parts)
