"""Fixtures for the remote-Jupyter tests: a Jupyter server with the Bokeh proxy.

* ``proxied`` (module): ``bokeh serve`` with the ``basic`` app, and ``jupyter
  server`` under ``/user/test/`` with a token, whose proxy allows the Bokeh
  server's port and one port where nothing listens; plus a third port that is
  not allowed. The Bokeh server accepts no websocket origin but its own: the
  proxy is a non-browser client and must send none.
* ``chromium_page``: a Playwright page in Debian's headless chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bokeh_server import BokehServer, find_free_port
from jupyter_process import JupyterProcess, start_jupyter
from testapps import app_paths


@dataclass(frozen=True)
class Proxied:
    jupyter: JupyterProcess
    bokeh: BokehServer
    dead_port: int  # allowed, nothing listens
    refused_port: int  # not allowed

    def app_url(self, app: str = "basic") -> str:
        """The app's URL through the proxy, as a browser computes it."""
        return self.jupyter.proxy_url(self.bokeh.port, f"/{app}")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    dead_port = find_free_port()
    refused_port = find_free_port()
    with BokehServer.start(app_paths(["basic"])) as bokeh:
        jupyter = start_jupyter(
            tmp_path_factory.mktemp("jupyter"),
            extra_args=(
                f"--BokehProxy.allowed_ports={bokeh.port}",
                f"--BokehProxy.allowed_ports={dead_port}",
            ),
        )
        try:
            yield Proxied(jupyter, bokeh, dead_port, refused_port)
        finally:
            jupyter.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium (skips when it is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()
