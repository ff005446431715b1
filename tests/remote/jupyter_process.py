"""A Jupyter server (or JupyterLab) as a remote deployment sees it, for the proxy tests.

:func:`start_jupyter` runs ``jupyter server`` or ``jupyter lab`` on 127.0.0.1 at a
free port, under a base URL such as a hub gives (``/user/test/``), with a random
token, and with bokeh_nb_client's server extension enabled by the package's own
``jupyter-config/jupyter_server_config.d/bokeh_nb_client.json``, copied into a
private ``JUPYTER_CONFIG_DIR``: an editable install does not install that file
(setuptools puts no data files in editable wheels), and the test must not
depend on how the package was installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bokeh_server import BokehServer, find_free_port
from browser_support import (
    allow_root_args,
    lab_settings_args,
    path_with_this_interpreter,
    spawn_logged,
    stop_process_group,
    wait_until_answers,
)

__all__ = ["EXTENSION_CONFIG", "JupyterProcess", "start_jupyter"]

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION_CONFIG = REPO_ROOT / "jupyter-config" / "jupyter_server_config.d" / "bokeh_nb_client.json"
STARTUP_TIMEOUT = 60.0


@dataclass
class JupyterProcess:
    """A running Jupyter server: where it listens, its token, its base URL."""

    port: int
    token: str
    base_url: str  # "/user/test/"
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``: the page origin the browser sees."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        """An absolute URL under the base URL (``path`` without a leading slash)."""
        return f"{self.origin}{self.base_url}{path}"

    def proxy_url(self, port: int, path: str = "") -> str:
        """The proxy's URL of ``path`` on the Bokeh server at ``port``."""
        return self.url(f"bokeh-proxy/{port}{path}")

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def get_json(self, path: str) -> Any:
        request = urllib.request.Request(self.url(path), headers=self.auth_headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body: object) -> Any:
        request = urllib.request.Request(
            self.url(path),
            data=json.dumps(body).encode(),
            method="POST",
            headers={**self.auth_headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        stop_process_group(self.process)


def start_jupyter(
    workdir: Path,
    kind: Literal["server", "lab"] = "server",
    extra_args: Sequence[str] = (),
    base_url: str = "/user/test/",
) -> JupyterProcess:
    """Start Jupyter with the extension enabled; return once its API answers."""
    root = workdir / "notebooks"
    root.mkdir(parents=True, exist_ok=True)
    config_dir = workdir / "jupyter-config"
    (config_dir / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
    shutil.copy(EXTENSION_CONFIG, config_dir / "jupyter_server_config.d" / EXTENSION_CONFIG.name)
    token = os.urandom(16).hex()
    port = find_free_port()
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        kind,
        "--no-browser",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.base_url={base_url}",
        "--ServerApp.port_retries=0",
        "--port",
        str(port),
        "--ip",
        "127.0.0.1",
    ]
    if kind == "lab":
        argv += lab_settings_args(workdir)
    argv += allow_root_args()
    argv += list(extra_args)
    env = dict(
        os.environ,
        PATH=path_with_this_interpreter(),
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),  # the port registry goes there too
    )
    # A Jupyter started from a kernel of a Jupyter with the extension would inherit these.
    env.pop("BOKEH_NB_CLIENT_PROXY", None)
    env.pop("BOKEH_NB_CLIENT_PROXY_PORTS", None)
    log_path = workdir / f"jupyter-{kind}.log"
    process = spawn_logged(argv, env, log_path)
    jupyter = JupyterProcess(port, token, base_url, root, log_path, process)
    try:
        wait_until_answers(
            lambda: jupyter.get_json("api/status"), process, jupyter.log_tail, STARTUP_TIMEOUT
        )
    except BaseException:
        jupyter.stop()
        raise
    return jupyter


@dataclass(frozen=True)
class Proxied:
    jupyter: JupyterProcess
    bokeh: BokehServer
    dead_port: int  # allowed, nothing listens
    refused_port: int  # not allowed

    def app_url(self, app: str = "basic") -> str:
        """The app's URL through the proxy, as a browser computes it."""
        return self.jupyter.proxy_url(self.bokeh.port, f"/{app}")
