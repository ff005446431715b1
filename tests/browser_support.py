"""Shared pieces of the browser tests (``tests/browser``, ``tests/remote``).

* Debian's headless chromium through Playwright (:func:`open_chromium_page`),
  never a browser downloaded by Playwright; it skips the test when it is missing.
* Jupyter processes: JupyterLab settings that keep pop-ups out of the way,
  starting a logged subprocess in its own session, waiting for its API, and
  stopping its process group.
* Driving a notebook in JupyterLab: writing it, opening it once its kernel is
  up, running its cells, typing a new cell.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "allow_root_args",
    "lab_settings_args",
    "open_chromium_page",
    "open_notebook",
    "run_all_cells",
    "run_in_new_cell",
    "spawn_logged",
    "stop_process_group",
    "wait_for_idle_kernel",
    "wait_until_answers",
    "write_lab_settings",
    "write_notebook",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def open_chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's headless chromium, 1400x1000 (skips when it is missing)."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


# --- Jupyter processes ---------------------------------------------------------------


def write_lab_settings(settings_dir: Path) -> None:
    """User settings that keep dialogs and pop-ups out of the test's way.

    * No news or update notifications.
    * Notebooks start the kernel named in their metadata without asking: without
      this, JupyterLab 4.6 sometimes shows its "Select Kernel" dialog for a
      notebook that names an installed kernel.
    * No windowing: cells scrolled out of view stay in the page.
    """
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
            "autoStartDefaultKernel": True,
            # every cell stays in the page, so tests can read cells out of view
            "windowingMode": "none",
        },
    }
    for relative, content in files.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


def lab_settings_args(workdir: Path) -> list[str]:
    """Write private JupyterLab settings under ``workdir``; the options that use them."""
    settings = workdir / "lab-settings"
    write_lab_settings(settings)
    return [
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workdir / 'lab-workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]


def allow_root_args() -> list[str]:
    """``--allow-root`` when running as root: containers often run tests as root."""
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def spawn_logged(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, its output going to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group, then SIGKILL it if it is still there after 15 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_answers(
    probe: Callable[[], object],
    process: subprocess.Popen[bytes],
    log_tail: Callable[[], str],
    timeout: float,
    name: str = "jupyter",
) -> None:
    """Return once ``probe()`` succeeds; raise if ``process`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail()}")
        try:
            probe()
            return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer within {timeout} s")
        time.sleep(0.1)  # polling a subprocess that offers no readiness event


def wait_for_idle_kernel(
    get_sessions: Callable[[], list[dict[str, Any]]], notebook: str, timeout: float = 60.0
) -> None:
    """Return once the notebook's kernel has a websocket connection and is idle.

    JupyterLab may start a kernel of its own for a notebook before it notices the
    existing session and switches to it; cells run while it switches are dropped.
    The server's view of the session settles that.
    """
    deadline = time.monotonic() + timeout
    while True:
        sessions = get_sessions()
        kernel = next((s["kernel"] for s in sessions if s.get("path") == notebook), None)
        connected = kernel is not None and kernel.get("connections", 0) >= 1
        if connected and kernel is not None and kernel.get("execution_state") == "idle":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no idle, connected kernel for {notebook}: {sessions}")
        time.sleep(0.1)  # polling a REST API that offers no event


# --- Notebooks in JupyterLab -----------------------------------------------------------


def write_notebook(path: Path, cells: Sequence[str]) -> None:
    """A notebook of code ``cells`` for the ``python3`` kernel."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)


def open_notebook(
    page: Any, login_url: str, notebook: str, wait_for_kernel: Callable[[], None]
) -> None:
    """Log in, open the notebook from the file list once the app is ready.

    The caller starts the notebook's kernel first: a page that opens a notebook
    without a running session can lose its first cells (see
    ``lab_process.start_kernel_session``). The launcher lists the kernels once
    JupyterLab knows them, so the notebook is opened only then;
    ``wait_for_kernel`` returns once the page is connected to that kernel.
    """
    page.goto(login_url)
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.wait_for(timeout=60_000)
    page.locator(".jp-DirListing-item", has_text=notebook).dblclick()
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=60_000
    )
    wait_for_kernel()


def run_all_cells(page: Any) -> None:
    """Run > Run All Cells."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def run_in_new_cell(page: Any, code: str) -> None:
    """Type ``code`` into the last cell and run it with Shift+Enter."""
    page.locator(".jp-Notebook .jp-Cell").last.locator(".cm-content").click()
    page.keyboard.insert_text(code)  # no key events: no auto-closed brackets
    page.keyboard.press("Shift+Enter")


BROWSER_ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"


@contextmanager
def failure_artifacts(page: Any, name: str, *logs: Callable[[], str]) -> Iterator[None]:
    """On any failure inside, save ``test-artifacts/browser/<name>_failure.png`` and
    print each of ``logs`` (e.g. JupyterLab's log tail), then let the failure go on."""
    try:
        yield
    except BaseException:
        BROWSER_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(BROWSER_ARTIFACTS / f"{name}_failure.png"))
        for log in logs:
            print(f"--- log ---\n{log()}")
        raise


def path_with_this_interpreter() -> str:
    """PATH with this interpreter's folder first, for a Jupyter server we start.

    ``jupyter lab`` runs the ``jupyter-lab`` it finds on PATH, and the ``python3``
    kernelspec an environment installs runs ``python`` from PATH: from a virtualenv
    that is not activated, both would be another Python's, without this package.
    """
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
