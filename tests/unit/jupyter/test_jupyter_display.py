"""Rendering for the notebook, without a kernel or a server: status, lists, inline views."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bokeh.document import Document
from bokeh.models import Button, Div

from bokeh_nb_client.jupyter import display
from bokeh_nb_client.jupyter.display import Rendered, SessionRow
from bokeh_nb_client.status import SessionState, SessionStatus

SESSION_ID = "AbCdEfGh1234567890abcdefghijklmnopqrstuvwxyz"
APP_URL = "http://127.0.0.1:5006/basic"


@dataclass
class FakeSession:
    """Just what rendering reads of a session (SessionLike)."""

    id: str = SESSION_ID
    app_url: str = APP_URL
    status: SessionStatus = field(
        default_factory=lambda: SessionStatus(
            url="ws://127.0.0.1:5006/basic/ws",
            session_id=SESSION_ID,
            state=SessionState.CONNECTED,
            server_version="3.9.2",
        )
    )
    document: Document | None = None


def _doc(*roots: object) -> Document:
    doc = Document()
    for root in roots:
        doc.add_root(root)
    return doc


def test_short_id_keeps_eight_characters() -> None:
    assert display.short_id(SESSION_ID) == "AbCdEfGh…"
    assert display.short_id("short") == "short"


def test_status_names_server_app_id_roots_and_state() -> None:
    session = FakeSession(document=_doc(Div(name="div"), Button()))
    rendered = display.render_status(session, "session")
    assert rendered.text.splitlines() == [
        "Bokeh session 'session'",
        "  server   http://127.0.0.1:5006 (bokeh 3.9.2)",
        "  app      /basic",
        "  session  AbCdEfGh…",
        "  roots    2: div (Div), Button",
        "  state    connected",
    ]
    assert 'data-state="connected"' in rendered.html
    assert SESSION_ID not in rendered.text + rendered.html


def test_status_shows_the_last_error_and_escapes_html() -> None:
    status = FakeSession().status.with_changes(
        state=SessionState.ERROR, last_error="<b>boom</b> & co"
    )
    rendered = display.render_status(FakeSession(status=status), "<x>")
    assert "last error  <b>boom</b> & co" in rendered.text
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; co" in rendered.html
    assert "<x>" not in rendered.html
    assert "  roots       0" in rendered.text


def test_rendered_is_a_mime_bundle() -> None:
    bundle, metadata = Rendered("plain", "<p>html</p>")._repr_mimebundle_()
    assert bundle == {"text/plain": "plain", "text/html": "<p>html</p>"}
    assert metadata == {}
    assert str(Rendered("plain", "")) == "plain"


def test_sessions_table() -> None:
    assert display.render_sessions([]).text == "No open Bokeh sessions in this kernel."
    rows = [
        SessionRow(FakeSession(document=_doc(Div())), ("session", "s"), "sync"),
        SessionRow(FakeSession(id="Zyxwvuts" + "0" * 36), (), "-"),
    ]
    lines = display.render_sessions(rows).text.splitlines()
    assert lines[0].split() == ["name", "kind", "state", "app", "session", "roots"]
    assert lines[1].split() == ["session,", "s", "sync", "connected", APP_URL, "AbCdEfGh…", "1"]
    assert lines[2].split() == ["-", "-", "connected", APP_URL, "Zyxwvuts…", "0"]


def _view_config(markup: str) -> dict[str, Any]:
    found = re.search(r"window\.bokehNbClient\.render\((\{.*?\})\);</script>", markup)
    assert found is not None
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def test_inline_view_embeds_the_servers_autoload_script_and_the_view_script() -> None:
    view = display.inline_view(APP_URL, SESSION_ID, load_timeout=2.5, token="T", key="K")
    html = view.html
    box = re.search(
        r'<div class="bnc-view" id="(bnc-view-[0-9a-f]{32})" data-state="loading"', html
    )
    assert box is not None
    # The view's script finds its container, and knows the app, token and load timeout.
    config = _view_config(html)
    assert config["boxId"] == box.group(1)
    assert config["appUrl"] == APP_URL
    assert config["loadTimeoutMs"] == 2500
    assert (config["token"], config["key"], config["state"]) == ("T", "K", "live")
    assert display.view_script() in html  # the package's static/view.js, inlined
    assert 'doc.on_event("connection_lost"' in html
    assert "--allow-websocket-origin=" in html
    # The server's own autoload request: BokehJS comes from the server.
    assert f"{APP_URL}/autoload.js?bokeh-autoload-element=" in html
    # The view script runs first, so its hook is in place before the autoload script runs.
    assert html.index("bokehNbClient.render(") < html.index("autoload.js?bokeh")
    assert view.text == f"Live view of Bokeh session AbCdEfGh… at {APP_URL}"


def test_each_inline_view_has_its_own_container() -> None:
    first = display.inline_view(APP_URL, SESSION_ID).html
    second = display.inline_view(APP_URL, SESSION_ID).html
    ids = {re.search(r'id="(bnc-view-[0-9a-f]{32})"', h).group(1) for h in (first, second)}  # type: ignore[union-attr]
    assert len(ids) == 2


def test_closed_view_says_the_kernel_closed_the_session() -> None:
    view = display.closed_view(APP_URL, SESSION_ID)
    assert 'data-state="closed"' in view.html
    assert "was closed in the kernel" in view.text
    # Its script closes the browser connection of the view it replaces.
    assert _view_config(view.html)["state"] == "closed"


def test_outside_ipython_nothing_is_inline(monkeypatch: object) -> None:
    # Under pytest IPython may be imported, but there is no kernel.
    assert display.in_kernel() is False
