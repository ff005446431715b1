"""The status panel in a real kernel, against a real ``bokeh serve``.

Buttons are clicked the way a front end's click ends up in the kernel: code in a
cell calls ``button.click()``, which runs the click handlers on the kernel thread.
The handler starts a task and returns, so the cell finishes at once; the outcome
is observed through later cells (the widgets' state, the sessions) with a bounded
number of short executions, or through the widget updates the kernel publishes on
IOPub while it is idle. Nothing sleeps.
"""

from __future__ import annotations

import http.server
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bokeh_server import BokehServer, StartBokehServer, find_free_port
from kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel

#: Executions a poll may take; each is one short round trip to the kernel.
POLL_ATTEMPTS = 600
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kp(kernel: KernelDriver, bokeh_server: BokehServer) -> KernelDriver:
    """The module's kernel with the extension loaded, pointed at the test server."""
    kernel.execute(
        "%load_ext bokeh_nb_client\n"
        f'%config BokehClient.default_url = "{bokeh_server.http_url()}/"\n'
        "%config BokehClient.timeout = 10\n"
        "from bokeh_nb_client import StatusPanel, pull_session\n"
        "from bokeh_nb_client.jupyter import registry\n"
    )
    return kernel


def poll(kernel: KernelDriver, expression: str, expected: str = "True") -> None:
    """Evaluate ``expression`` in the kernel until it prints ``expected`` (bounded)."""
    seen = ""
    for _ in range(POLL_ATTEMPTS):
        seen = kernel.execute(f"print({expression})").stdout.strip()
        if seen == expected:
            return
    raise AssertionError(f"{expression} printed {seen!r}, never {expected!r}")


def value(kernel: KernelDriver, expression: str) -> str:
    return kernel.execute(f"print({expression})").stdout.strip()


def test_pull_displays_the_row_and_the_buttons_act(kp: KernelDriver) -> None:
    result = kp.execute("%bokeh_pull basic --as bp")
    bundle = next(d for d in result.displays if WIDGET_MIME in d)
    assert bundle["text/plain"].startswith("Bokeh session 'bp'")  # the text fallback
    kp.execute(
        "panel = StatusPanel()\n"
        "row = panel.row_for(bp)\n"
        "assert row is not None and row.names == ('bp',), row.names\n"
        "before = bp.status.messages_in\n"
    )
    assert 'data-state="connected"' in value(kp, "row.title.value")

    # Pull: the click returns at once with the button disabled; the task finishes later.
    clicked = kp.execute(
        "row.buttons['pull'].click()\n"
        "print(row.buttons['pull'].disabled, row.buttons['pull'].description)"
    )
    assert clicked.stdout.split() == ["True", "Pulling…"]
    poll(kp, "'pulled at' in row.message.value and not row.buttons['pull'].disabled")
    poll(kp, "row.status.messages_in > before")  # the reply, as the panel saw it

    # Push: the server's document is replaced by the kernel's.
    kp.execute(
        "bp.document.get_model_by_name('div').text = 'pushed by the panel'\n"
        "out_before = bp.status.messages_out\n"
        "row.buttons['push'].click()"
    )
    poll(kp, "'pushed at' in row.message.value")
    poll(kp, "row.status.messages_out > out_before")
    other = "pull_session(session_id=bp.id, url=bp.app_url)"
    assert value(kp, f"{other}.document.get_model_by_name('div').text") == "pushed by the panel"

    # Show: a live view of the session in the panel's output area.
    kp.execute("row.buttons['show'].click()")
    poll(kp, "len(panel.views.outputs)", "1")
    html = value(kp, "panel.views.outputs[0]['data']['text/html']")
    assert "bnc-view" in html
    assert value(kp, "bp.id") in html

    # Close: the session closes, the registry forgets it, the view says so.
    kp.execute("row.buttons['close'].click()")
    poll(kp, "row.status.state.value", "closed")
    assert value(kp, "bp.status.state.value") == "closed"
    assert value(kp, "registry.get('bp')") == "None"
    assert "was closed in the kernel" in value(kp, "panel.views.outputs[0]['data']['text/html']")
    enabled = value(kp, "[a for a, b in row.buttons.items() if not b.disabled]")
    assert enabled == "[]"
    kp.execute("panel.close()")


def test_a_failed_action_shows_in_the_row(kp: KernelDriver, bokeh_server: BokehServer) -> None:
    kp.execute(
        "from bokeh_nb_client import AsyncClientSession\n"
        f"gone = AsyncClientSession(websocket_url='{bokeh_server.ws_url('no_such_app')}', "
        "reconnect=None)\n"
        "fpanel = StatusPanel(include_kernel_sessions=False)\n"
        "frow = fpanel.track(gone, 'gone')\n"
        "frow.buttons['pull'].click()"
    )
    poll(kp, "'pull failed' in frow.message.value and not frow.running")
    message = value(kp, "frow.message.value")
    assert "HandshakeRejected" in message and "404" in message
    poll(kp, "frow.status.state.value", "error")
    kp.execute("fpanel.close()\nawait gone.close()")


def test_the_panel_follows_a_busy_session_while_idle_at_most_ten_times_a_second(
    kp: KernelDriver,
) -> None:
    kp.execute(
        "%bokeh_pull ticker --as tk\n"
        "tpanel = StatusPanel(include_kernel_sessions=False)\n"
        "trow = tpanel.track(tk, 'tk')\n"
    )
    stats_id = value(kp, "trow.stats.model_id")
    # The kernel is idle now: every widget update below is published from the
    # kernel's loop between cells. Watch IOPub for a bounded window.
    updates: list[tuple[float, str]] = []
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < 1.5:
        try:
            msg = kp.client.get_iopub_msg(timeout=1.5 - elapsed)
        except queue.Empty:
            break
        content = msg["content"]
        state = content.get("data", {}).get("state", {})
        if (
            msg["msg_type"] == "comm_msg"
            and content.get("comm_id") == stats_id
            and "value" in state
        ):
            updates.append((time.monotonic(), state["value"]))
    assert len(updates) >= 5, "the panel did not follow the session while the kernel was idle"
    span = updates[-1][0] - updates[0][0]
    assert (len(updates) - 1) / span <= 12, f"{len(updates)} updates in {span:.2f} s"
    first = int(updates[0][1].split("in ")[1].split(" msgs")[0])
    last = int(updates[-1][1].split("in ")[1].split(" msgs")[0])
    assert last - first > 3 * len(updates)  # ~100 messages a second, coalesced
    kp.execute("tpanel.close()\n%bokeh_close tk")


def test_reconnect_reopens_a_session_whose_connection_ended(
    kp: KernelDriver, start_bokeh_server: StartBokehServer
) -> None:
    server = start_bokeh_server(apps=["basic"])
    kp.execute(
        f"rs = pull_session(url='{server.http_url('basic')}', reconnect=None)\n"
        "kept = [rs]  # a reference the reconnect must leave valid\n"
        "rpanel = StatusPanel()\n"  # lists the kernel's sessions, rs among them
        "rrow = rpanel.row_for(rs)\n"
        "print(rrow.names)"
    )
    server.stop()
    poll(kp, "rrow.status.state.value in ('disconnected', 'error')")
    assert value(kp, "rrow.buttons['reconnect'].disabled") == "False"
    assert value(kp, "rrow.buttons['pull'].disabled") == "True"
    server.restart()
    kp.execute("rrow.buttons['reconnect'].click()")
    poll(kp, "'reconnected at' in rrow.message.value")
    # The same session object, reconnected: every reference to it stays valid.
    assert value(kp, "(rs is kept[0], rs.connected)") == "(True, True)"
    assert value(kp, "(rrow.session is rs, rrow.status.state.value)") == "(True, 'connected')"
    assert value(kp, "len(rs.document.roots)") == "5"
    # The error that ended the old connection is no longer shown in red, but kept.
    assert "last error" not in value(kp, "rrow.error.value")
    assert "earlier errors (" in value(kp, "rrow.error.value")
    assert value(kp, "len(rrow.errors) >= 1") == "True"
    # ... and usable: a pull through the panel succeeds again.
    kp.execute("rrow.buttons['pull'].click()")
    poll(kp, "'pulled at' in rrow.message.value")
    assert value(kp, "(rs.connected, len(rs.document.roots))") == "(True, 5)"
    kp.execute("rpanel.close()\nrs.close()")


def test_a_view_shown_from_the_panel_follows_its_session(
    kp: KernelDriver, start_bokeh_server: StartBokehServer
) -> None:
    """Show's view says when its session stops following the server, and is rendered
    again (live, with a fresh token) when the session reconnects: as ``%bokeh_show``'s
    views do (issue 12)."""
    server = start_bokeh_server(apps=["basic"])
    kp.execute(
        f"vs = pull_session(url='{server.http_url('basic')}', reconnect=None)\n"
        "vpanel = StatusPanel()\n"
        "vrow = vpanel.row_for(vs)\n"
        "def vstate():\n"
        "    outputs = vpanel.views.outputs\n"
        "    html = outputs[0]['data']['text/html'] if outputs else ''\n"
        "    if 'data-state=\"detached\"' in html:\n"
        "        return 'detached'\n"
        "    return 'live' if '\"state\": \"live\"' in html else 'none'\n"
        "vrow.buttons['show'].click()"
    )
    poll(kp, "vstate()", "live")
    kp.execute("vrenderings = [vpanel.views.outputs]")
    server.stop()
    poll(kp, "vstate()", "detached")
    server.restart()
    kp.execute("vrow.buttons['reconnect'].click()")
    poll(kp, "vstate()", "live")
    assert value(kp, "vpanel.views.outputs != vrenderings[0]") == "True"
    kp.execute("vpanel.close()\nvs.close()")


@pytest.fixture
def not_bokeh(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server (a directory listing with links): something that is not Bokeh."""
    (tmp_path / "page.html").write_text("<a href='/elsewhere'>a link</a>")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *args, directory=str(tmp_path)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_browse_lists_apps_opens_and_attaches_and_explains_failures(
    kp: KernelDriver, bokeh_server: BokehServer, not_bokeh: str
) -> None:
    kp.execute(
        "bpanel = StatusPanel(include_kernel_sessions=False)\n"
        f"bpanel.url_text.value = '{bokeh_server.http_url()}'\n"
        "bpanel.list_button.click()"
    )
    poll(kp, "'basic' in bpanel.app_buttons and 'ticker' in bpanel.app_buttons")
    assert "apps at" in value(kp, "bpanel.browse_message.value")

    kp.execute("bpanel.app_buttons['basic'].click()")
    poll(kp, "'opened basic' in bpanel.browse_message.value")
    assert value(kp, "(registry.get('basic') is basic, basic.connected)") == "(True, True)"
    assert value(kp, "bpanel.row_for(basic).names") == "('basic',)"

    # Attach: the session id field joins an existing server session.
    kp.execute("bpanel.session_id_text.value = basic.id\nbpanel.app_buttons['basic'].click()")
    poll(kp, "'opened basic_2' in bpanel.browse_message.value")
    assert value(kp, "(basic_2.id == basic.id, basic_2.connected)") == "(True, True)"

    port = find_free_port()
    kp.execute(f"bpanel.browse('http://127.0.0.1:{port}')")
    poll(kp, "'List apps' == bpanel.list_button.description")
    message = value(kp, "bpanel.browse_message.value")
    assert "connection refused" in message and 'data-kind="error"' in message
    assert value(kp, "len(bpanel.app_buttons)") == "0"

    kp.execute(f"bpanel.browse('{not_bokeh}')")
    poll(kp, "'not a Bokeh server' in bpanel.browse_message.value")
    kp.execute("bpanel.close()\nbasic.close()\nbasic_2.close()")


def test_bokeh_sessions_displays_the_panel(kp: KernelDriver) -> None:
    kp.execute("%bokeh_pull basic --as listed_here")
    result = kp.execute("%bokeh_sessions")
    bundle = next(d for d in result.displays if WIDGET_MIME in d)
    assert "listed_here" in bundle["text/plain"]  # the table, for front ends without widgets
    kp.execute("from bokeh_nb_client.jupyter.panel import shared_panel")
    assert value(kp, "shared_panel().row_for(listed_here).names") == "('listed_here',)"
    kp.execute("%bokeh_close listed_here")
