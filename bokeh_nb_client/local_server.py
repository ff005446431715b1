"""Start a local ``bokeh serve`` for demos and examples.

``local_bokeh_server(apps)`` runs ``bokeh serve`` on 127.0.0.1 at a free port in
a subprocess, waits until it answers HTTP, yields its base URL, and stops it on
exit. It is a convenience for the demo and notebooks, not a process manager.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

__all__ = ["BUNDLED_APP", "local_bokeh_server"]

#: The instrument-monitor app shipped with the package.
BUNDLED_APP = Path(__file__).parent / "apps" / "monitor.py"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def local_bokeh_server(
    apps: Sequence[Path] = (BUNDLED_APP,),
    *,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Run ``bokeh serve apps...`` on 127.0.0.1; yield ``http://127.0.0.1:PORT``.

    Raises:
        RuntimeError: the server exited or did not answer within ``startup_timeout``
            (the message includes the end of its log).
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "bokeh", "serve", *map(str, apps),
                "--address", "127.0.0.1", "--port", str(port),
                "--allow-websocket-origin", f"127.0.0.1:{port}",
                "--allow-websocket-origin", f"localhost:{port}",
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )  # fmt: skip
        try:
            _wait_until_up(process, f"{url}/{Path(apps[0]).stem}/metadata", startup_timeout, log)
            yield url
        finally:
            _stop(process)


def _wait_until_up(
    process: subprocess.Popen[bytes],
    probe: str,
    timeout: float,
    log: IO[str],
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(probe, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            # Not listening yet: wait a little, waking at once if the server exits.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.05)
    log.seek(0)
    tail = log.read()[-2000:]
    _stop(process)
    raise RuntimeError(f"bokeh serve did not start (exit code {process.poll()}):\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
