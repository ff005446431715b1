"""The status panel in a real JupyterLab, in headless chromium, clicked like a user would.

1. A notebook written by the test shows ``StatusPanel(url=...)`` for a dedicated
   Bokeh server (started with ``--allow-websocket-origin *``, so that the live view
   can load from the JupyterLab page's origin).
2. "List apps" lists the server's apps; the "Pull" of ``basic`` opens a session:
   a row appears and its state becomes "connected".
3. The row's "Show" puts a live view of the session below the panel; it renders
   the app's ``div``. The page is saved to
   ``test-artifacts/browser/status_panel.png``.
4. The row's "Close" closes the session: its state becomes "closed" and the view
   says the kernel closed the session (``status_panel_closed.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bokeh_server import StartBokehServer
from browser_support import (
    BROWSER_ARTIFACTS,
    failure_artifacts,
    open_notebook,
    run_all_cells,
    write_notebook,
)
from lab_process import JupyterLab, start_kernel_session, wait_for_kernel_connection
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ARTIFACTS = BROWSER_ARTIFACTS
NOTEBOOK = "status_panel.ipynb"
TIMEOUT_MS = 30_000


def _write_notebook(path: Path, server_url: str) -> None:
    write_notebook(
        path,
        [
            "%load_ext bokeh_nb_client\n"
            "from bokeh_nb_client import StatusPanel\n"
            f"panel = StatusPanel(url={server_url!r})\n"
            "panel"
        ],
    )


def _open_notebook(page: Any, lab: JupyterLab) -> None:
    """Start the kernel first, then open the notebook (see test_browser_inline_show.py)."""
    start_kernel_session(lab, NOTEBOOK)
    open_notebook(
        page, lab.login_url(), NOTEBOOK, lambda: wait_for_kernel_connection(lab, NOTEBOOK)
    )


@pytest.mark.timeout(180)
def test_the_panel_lists_apps_opens_shows_and_closes_a_session(
    jupyter_lab: JupyterLab, chromium_page: Any, start_bokeh_server: StartBokehServer
) -> None:
    page = chromium_page
    with failure_artifacts(page, "status_panel", jupyter_lab.log_tail):
        _scenario(page, jupyter_lab, start_bokeh_server)


def _scenario(page: Any, jupyter_lab: JupyterLab, start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(
        apps=["basic", "ticker"], extra_args=("--allow-websocket-origin", "*")
    )
    _write_notebook(jupyter_lab.root_dir / NOTEBOOK, server.http_url())
    _open_notebook(page, jupyter_lab)
    run_all_cells(page)

    # 1. The panel renders (as widgets, not as its text fallback).
    panel = page.locator(".bnc-status-panel")
    panel.wait_for(timeout=TIMEOUT_MS)
    assert "no open Bokeh sessions" in panel.inner_text()

    # 2. List the server's apps, then Pull one: a connected row appears.
    panel.locator(".bnc-browse-list").click()
    app = panel.locator(".bnc-browse-app", has_text="basic")
    app.wait_for(timeout=TIMEOUT_MS)
    assert panel.locator(".bnc-browse-app").count() == 2
    app.locator(".bnc-browse-pull").click()
    row = panel.locator(".bnc-panel-row").first
    connected = row.locator(".bnc-state[data-state='connected']")
    connected.wait_for(timeout=TIMEOUT_MS)
    assert "/basic" in row.inner_text()
    assert "5 roots" in row.inner_text()
    assert "opened basic" in panel.locator(".bnc-browse-message").inner_text()

    # 3. Show: a live view of the session below the panel renders the app's div.
    row.locator(".bnc-action-show").click()
    live = panel.locator(".bnc-panel-views .bnc-view[data-state='live']")
    live.wait_for(state="attached", timeout=TIMEOUT_MS)
    panel.locator(".bnc-panel-views .bk-Div").get_by_text("hello", exact=True).wait_for(
        timeout=TIMEOUT_MS
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "status_panel.png"))

    # 4. Close: the row says closed, its buttons are off, the view says why it stopped.
    row.locator(".bnc-action-close").click()
    row.locator(".bnc-state[data-state='closed']").wait_for(timeout=TIMEOUT_MS)
    for action in ("pull", "push", "show", "close", "reconnect"):
        # Each button's state is its own widget update: wait for it to arrive.
        expect(row.locator(f".bnc-action-{action}")).to_be_disabled(timeout=TIMEOUT_MS)
    closed = panel.locator(".bnc-panel-views .bnc-view[data-state='closed']")
    closed.wait_for(state="attached", timeout=TIMEOUT_MS)
    assert "was closed in the kernel" in closed.inner_text()
    page.screenshot(path=str(ARTIFACTS / "status_panel_closed.png"))
