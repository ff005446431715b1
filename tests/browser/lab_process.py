"""A JupyterLab server process for the browser tests (see ``conftest.py``)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browser_support import wait_for_idle_kernel, wait_until_answers

__all__ = [
    "LAB_STARTUP_TIMEOUT",
    "JupyterLab",
    "start_kernel_session",
    "wait_for_kernel_connection",
    "wait_until_up",
]

LAB_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab: where it listens, its token and its notebook directory."""

    port: int
    token: str
    root_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; also the page origin the Bokeh server must allow."""
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """The JupyterLab URL of a notebook in ``root_dir`` (no token: the page sets a cookie)."""
        return f"{self.base_url}/lab/tree/{name}"

    def login_url(self) -> str:
        """A URL that logs the browser in with the token."""
        return f"{self.base_url}/lab?token={self.token}"

    def log_tail(self) -> str:
        """The end of JupyterLab's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""


def wait_until_up(lab: JupyterLab, process: subprocess.Popen[bytes]) -> None:
    """Return once JupyterLab answers its status API; raise if it exits or times out."""
    status_url = f"{lab.base_url}/api/status?token={lab.token}"

    def probe() -> None:
        with urllib.request.urlopen(status_url, timeout=2):
            pass

    wait_until_answers(probe, process, lab.log_tail, LAB_STARTUP_TIMEOUT, name="jupyter lab")


def start_kernel_session(lab: JupyterLab, notebook: str, kernel: str = "python3") -> None:
    """Start the notebook's kernel through the REST API, before the page opens it.

    A page that opens a notebook without a running session starts a kernel and
    connects its websocket at once; jupyter_server 2.21 can answer that early
    websocket with a 500 (``'NoneType' object has no attribute
    'kernel_ws_protocol'``), and cells queued until JupyterLab reconnects are
    dropped. With the session already running (the POST returns once the kernel
    is up) the page simply connects to it.
    """
    body = json.dumps(
        {"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": kernel}}
    ).encode()
    request = urllib.request.Request(
        f"{lab.base_url}/api/sessions",
        data=body,
        method="POST",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status not in (200, 201):
            raise RuntimeError(f"POST /api/sessions answered {response.status}")


def wait_for_kernel_connection(lab: JupyterLab, notebook: str, timeout: float = 60.0) -> None:
    """Return once the notebook's kernel has a websocket connection and is idle."""
    headers = {"Authorization": f"token {lab.token}"}
    wait_for_idle_kernel(
        lambda: _get_json(f"{lab.base_url}/api/sessions", headers), notebook, timeout
    )


def _get_json(url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        data: list[dict[str, Any]] = json.loads(r.read())
        return data
