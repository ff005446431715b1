"""The inline view of a session, in a real JupyterLab, in headless chromium.

One scenario, in the order a user would meet it:

1. A notebook written by the test is opened in JupyterLab and run with
   Run > Run All Cells. It pulls a session of the ``basic`` app with
   ``%bokeh_pull`` and shows it twice: with ``%bokeh_show`` and with
   ``session.show()``. Both views must load BokehJS from the Bokeh server, connect
   to the same server session and render the ``div`` root ("hello").
2. A new cell typed into the notebook changes ``div.text`` in the kernel; both
   views must show the new text without re-running anything. The page is saved
   to ``test-artifacts/browser/inline_show.png``.
3. The Bokeh server is stopped: both views must say they are disconnected
   (a banner driven by BokehJS's ``connection_lost`` event), not fail silently
   (``inline_disconnected.png``).
4. ``%bokeh_close session`` in the kernel replaces both views with a note that
   the kernel closed the session.

The Bokeh server is a dedicated one started with ``--allow-websocket-origin *``:
the views' websockets come from the JupyterLab page's origin, which a Bokeh server
refuses unless it is allowed (users must pass the Jupyter host:port, see
``bokeh_nb_client.jupyter.display``).
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
    run_in_new_cell,
    write_notebook,
)
from lab_process import JupyterLab, start_kernel_session, wait_for_kernel_connection

pytestmark = pytest.mark.browser

ARTIFACTS = BROWSER_ARTIFACTS
NOTEBOOK = "inline_show.ipynb"
CHANGED = "changed from the kernel"
TIMEOUT_MS = 30_000


def _write_notebook(path: Path, app_url: str) -> None:
    write_notebook(
        path,
        [f"%load_ext bokeh_nb_client\n%bokeh_pull {app_url}", "%bokeh_show", "session.show()", ""],
    )


def _open_notebook(page: Any, lab: JupyterLab) -> None:
    """Start the kernel, log in, open the notebook from the file list once the app is ready.

    The kernel is started before the page connects (see ``start_kernel_session``).
    """
    start_kernel_session(lab, NOTEBOOK)
    open_notebook(
        page, lab.login_url(), NOTEBOOK, lambda: wait_for_kernel_connection(lab, NOTEBOOK)
    )


@pytest.mark.timeout(180)
def test_inline_view_renders_updates_and_reports_disconnection(
    jupyter_lab: JupyterLab, chromium_page: Any, start_bokeh_server: StartBokehServer
) -> None:
    page = chromium_page
    with failure_artifacts(page, "inline_show", jupyter_lab.log_tail):
        _scenario(page, jupyter_lab, start_bokeh_server)


def _scenario(page: Any, jupyter_lab: JupyterLab, start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"], extra_args=("--allow-websocket-origin", "*"))
    _write_notebook(jupyter_lab.root_dir / NOTEBOOK, server.http_url("basic"))
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    _open_notebook(page, jupyter_lab)
    run_all_cells(page)

    # 1. Both views load BokehJS and the session, and render the div.
    views = page.locator(".bnc-view")
    live = page.locator(".bnc-view[data-state='live']")
    live.nth(1).wait_for(state="attached", timeout=TIMEOUT_MS)
    assert views.count() == 2
    hello = page.locator(".bnc-view .bk-Div").get_by_text("hello", exact=True)
    hello.nth(1).wait_for(timeout=TIMEOUT_MS)
    assert page.evaluate("typeof window.Bokeh") == "object"

    # 2. A change made in the kernel reaches both views.
    run_in_new_cell(page, f'session.document.get_model_by_name("div").text = "{CHANGED}"')
    changed = page.locator(".bnc-view .bk-Div").get_by_text(CHANGED, exact=True)
    changed.nth(1).wait_for(timeout=TIMEOUT_MS)
    assert changed.count() == 2
    assert hello.count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "inline_show.png"))

    # 3. The server goes away: both views say so.
    server.stop()
    disconnected = page.locator(".bnc-view[data-state='disconnected']")
    disconnected.nth(1).wait_for(state="attached", timeout=TIMEOUT_MS)
    banners = page.locator(".bnc-view[data-state='disconnected'] .bnc-banner")
    assert all("Disconnected from the Bokeh server" in t for t in banners.all_inner_texts())
    page.screenshot(path=str(ARTIFACTS / "inline_disconnected.png"))

    # 4. Closing the session in the kernel replaces both views with a note.
    run_in_new_cell(page, "%bokeh_close session")
    closed = page.locator(".bnc-view[data-state='closed']")
    closed.nth(1).wait_for(state="attached", timeout=TIMEOUT_MS)
    assert page.locator(".bnc-view[data-state='disconnected']").count() == 0
    assert "was closed in the kernel" in closed.first.inner_text()

    # BokehJS itself logs the lost websocket; nothing else may fail on the page.
    unexpected = [e for e in console_errors if "websocket" not in e.lower() and "ws://" not in e]
    assert not [e for e in unexpected if "bokeh" in e.lower()], unexpected
