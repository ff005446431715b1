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
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bokeh_server import find_free_port
from lab_process import JupyterLab, wait_until_up, write_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def jupyter_lab(tmp_path: Path) -> Iterator[JupyterLab]:
    """A JupyterLab server on 127.0.0.1 with a token and a temporary notebook directory."""
    root = tmp_path / "notebooks"
    root.mkdir()
    settings = tmp_path / "lab-settings"
    write_settings(settings)
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
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # containers often run tests as root
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    lab = JupyterLab(port=port, token=token, root_dir=root, log_path=log_path)
    try:
        wait_until_up(lab, process)
        yield lab
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def chromium_page() -> Iterator[object]:
    """A Playwright page in Debian's headless chromium, 1400x1000."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            browser.close()
