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
from typing import Any

import pytest
from bokeh_server import BokehServer, find_free_port
from browser_support import open_chromium_page
from jupyter_process import Proxied, start_jupyter
from testapps import app_paths


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


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium (skips when it is missing)."""
    with open_chromium_page() as page:
        yield page
