"""A live view through the Jupyter proxy, as on a hub: headless chromium, real JupyterLab.

JupyterLab runs under ``/user/test/`` with a token and bokeh_nb_client's server
extension (default settings: only port 5006 is configured). ``bokeh serve`` runs
on another, random port and accepts websockets from its own origin only, so a
browser that talked to it directly would be refused. The notebook pulls a
session of the ``basic`` app and shows it twice (``%bokeh_show`` and
``session.show()``): the kernel registers the port with the proxy, and the
browser computes the proxied URLs from the page's base URL.

Checked: both views render (``hello``), a change made in the kernel reaches them,
every request the page made for Bokeh (autoload script, BokehJS, websocket) went
to Jupyter's origin under ``/user/test/bokeh-proxy/<port>/`` and none to the
Bokeh server's port, a port that nobody registered is refused (403), and a
browser without Jupyter's login cookie is refused (403). The page is saved to
``test-artifacts/browser/remote_proxy.png``. Last, a view whose port the proxy
refuses falls back, in the browser, to the Bokeh server's direct URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bokeh_server import BokehServer, find_free_port
from browser_support import (
    BROWSER_ARTIFACTS,
    failure_artifacts,
    open_notebook,
    run_all_cells,
    run_in_new_cell,
    wait_for_idle_kernel,
    write_notebook,
)
from jupyter_process import JupyterProcess, start_jupyter
from playwright.sync_api import WebSocket
from testapps import app_paths

pytestmark = pytest.mark.browser

ARTIFACTS = BROWSER_ARTIFACTS
NOTEBOOK = "remote_proxy.ipynb"
CHANGED = "changed from the kernel, through the proxy"
TIMEOUT_MS = 30_000


def _write_notebook(path: Path, app_url: str) -> None:
    write_notebook(
        path,
        [f"%load_ext bokeh_nb_client\n%bokeh_pull {app_url}", "%bokeh_show", "session.show()", ""],
    )


def _start_kernel(jupyter: JupyterProcess) -> None:
    """Start the notebook's kernel before the page opens it (see tests/browser/lab_process)."""
    jupyter.post_json(
        "api/sessions",
        {"path": NOTEBOOK, "name": NOTEBOOK, "type": "notebook", "kernel": {"name": "python3"}},
    )


@pytest.mark.timeout(180)
def test_live_view_goes_through_the_jupyter_proxy(tmp_path: Path, chromium_page: Any) -> None:
    page = chromium_page
    with (
        BokehServer.start(app_paths(["basic"])) as bokeh,
        # Reachable directly, from any page: for the fallback of step 5.
        BokehServer.start(
            app_paths(["basic"]), extra_args=("--allow-websocket-origin", "*")
        ) as open_bokeh,
    ):
        jupyter = start_jupyter(tmp_path, kind="lab")
        try:
            with failure_artifacts(
                page, "remote_proxy", jupyter.log_tail, lambda: bokeh.log_text()[-3000:]
            ):
                _scenario(page, jupyter, bokeh)
                _fallback(page, open_bokeh)
        finally:
            jupyter.stop()


def _scenario(page: Any, jupyter: JupyterProcess, bokeh: BokehServer) -> None:
    _write_notebook(jupyter.root_dir / NOTEBOOK, bokeh.http_url("basic"))
    requests: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    opened: list[WebSocket] = []
    page.on("websocket", lambda socket: (sockets.append(socket.url), opened.append(socket)))

    _start_kernel(jupyter)
    open_notebook(
        page,
        jupyter.url(f"lab?token={jupyter.token}"),
        NOTEBOOK,
        lambda: wait_for_idle_kernel(lambda: jupyter.get_json("api/sessions"), NOTEBOOK),
    )
    run_all_cells(page)

    # 1. Both views load through the proxy and render the div.
    live = page.locator(".bnc-view[data-state='live']")
    live.nth(1).wait_for(state="attached", timeout=TIMEOUT_MS)
    assert page.locator(".bnc-view").count() == 2
    assert page.locator(".bnc-view[data-route='proxy']").count() == 2
    hello = page.locator(".bnc-view .bk-Div").get_by_text("hello", exact=True)
    hello.nth(1).wait_for(timeout=TIMEOUT_MS)

    # 2. A change made in the kernel reaches both views.
    run_in_new_cell(page, f'session.document.get_model_by_name("div").text = "{CHANGED}"')
    changed = page.locator(".bnc-view .bk-Div").get_by_text(CHANGED, exact=True)
    changed.nth(1).wait_for(timeout=TIMEOUT_MS)
    assert changed.count() == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "remote_proxy.png"))

    # 3. Every Bokeh request went to Jupyter, under its base URL; none to Bokeh's port.
    proxy = f"{jupyter.origin}/user/test/bokeh-proxy/{bokeh.port}/"
    direct = [url for url in requests + sockets if urlsplit(url).port == bokeh.port]
    assert not direct, direct
    bokeh_requests = [
        url for url in requests if "bokeh" in urlsplit(url).path and "/lab/" not in url
    ]
    assert any(url.startswith(proxy + "basic/autoload.js?") for url in bokeh_requests)
    assert any(url.startswith(proxy + "static/js/bokeh.min.js") for url in bokeh_requests)
    status = f"{jupyter.origin}/user/test/bokeh-proxy/api/status?port={bokeh.port}"
    assert all(url.startswith(proxy) or url == status for url in bokeh_requests), bokeh_requests
    ws = "ws" + proxy.removeprefix("http") + "basic/ws"
    # Every Bokeh socket went through the proxy, and each view has its own open
    # connection (a view that lost its connection must not hand a dead one to the
    # next view of the same session): two views, two open sockets. A view may have
    # reconnected on the way (a busy machine), so closed ones are not counted.
    assert all(url == ws for url in sockets if "bokeh" in url), sockets
    assert [s.url for s in opened if "bokeh" in s.url and not s.is_closed()] == [ws, ws], sockets

    # 4. A port nobody registered is refused, and so is a browser that is not logged in.
    unlisted = jupyter.proxy_url(find_free_port(), "/basic/autoload.js?bokeh-autoload-element=x")
    assert page.request.get(unlisted).status == 403
    assert page.request.get(jupyter.url(f"bokeh-proxy/api/status?port={bokeh.port}")).ok
    stranger = page.context.browser.new_context()
    try:
        assert stranger.request.get(proxy + "static/js/bokeh.min.js").status == 403
        assert (
            stranger.request.get(proxy + "basic/autoload.js?bokeh-autoload-element=x").status == 403
        )
    finally:
        stranger.close()


def _fallback(page: Any, open_bokeh: BokehServer) -> None:
    """5. When the proxy refuses the port, an "auto" view falls back to the direct URL.

    The kernel forgets its port registry, so the proxy's status answers that the
    port is not allowed; the browser then loads the view from the Bokeh server
    itself, which this one allows.
    """
    run_in_new_cell(
        page,
        'import os\nos.environ.pop("BOKEH_NB_CLIENT_PROXY_PORTS")\n'
        f"%bokeh_pull {open_bokeh.http_url('basic')} --as fallback\n%bokeh_show fallback",
    )
    page.locator(".bnc-view[data-state='live']").nth(2).wait_for(
        state="attached", timeout=TIMEOUT_MS
    )
    view = page.locator(".bnc-view").nth(2)
    view.locator(".bk-Div").get_by_text("hello", exact=True).wait_for(timeout=TIMEOUT_MS)
    assert view.get_attribute("data-route") == "direct"
