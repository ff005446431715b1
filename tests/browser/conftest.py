"""Fixtures for the browser tests: a JupyterLab server and a headless chromium.

* ``jupyter_lab`` starts ``jupyter lab`` on 127.0.0.1 at a free port with a random
  token, a temporary notebook directory and private settings (no news pop-up, no
  update checks, no saved workspace), and stops it after the test.
* ``chromium_page`` is a Playwright page in Debian's chromium
  (``/usr/bin/chromium``, never a browser downloaded by Playwright).

Both skip the test when their program is missing, so the suite still runs on a
machine without chromium.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bokeh_server import find_free_port
from browser_support import (
    allow_root_args,
    lab_settings_args,
    open_chromium_page,
    path_with_this_interpreter,
    spawn_logged,
    stop_process_group,
)
from lab_process import JupyterLab, wait_until_up


@pytest.fixture
def lab_env() -> dict[str, str]:
    """Extra environment for JupyterLab and its kernels (a test module may override it)."""
    return {}


@pytest.fixture
def jupyter_lab(tmp_path: Path, lab_env: dict[str, str]) -> Iterator[JupyterLab]:
    """A JupyterLab server on 127.0.0.1 with a token and a temporary notebook directory."""
    root = tmp_path / "notebooks"
    root.mkdir()
    token = os.urandom(16).hex()
    port = find_free_port()
    log_path = tmp_path / "jupyter-lab.log"
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--port",
        str(port),
        "--ip",
        "127.0.0.1",
        "--ServerApp.port_retries=0",
        *lab_settings_args(tmp_path),
        *allow_root_args(),
    ]
    env = dict(
        os.environ,
        PATH=path_with_this_interpreter(),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        **lab_env,
    )
    process = spawn_logged(argv, env, log_path)
    lab = JupyterLab(port=port, token=token, root_dir=root, log_path=log_path)
    try:
        wait_until_up(lab, process)
        yield lab
    finally:
        stop_process_group(process)


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium, 1400x1000."""
    with open_chromium_page() as page:
        yield page
