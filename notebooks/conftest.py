"""Run the example notebooks against a real ``bokeh serve``: ``pytest --nbval-lax notebooks/``.

Before any notebook kernel starts, this starts one ``bokeh serve`` on 127.0.0.1 at
a free port, serving the test apps of ``tests/interop/apps`` (``basic``, ``sink``,
``ticker``, ...), and sets ``BOKEH_NB_SERVER`` to its URL. nbval starts a kernel
per notebook, and kernels inherit ``os.environ``, so every notebook reads the
server from that variable (default ``http://localhost:5006`` when you run them by
hand against your own ``bokeh serve tests/interop/apps/*.py``).

Kernels start when nbval sets up a notebook, not through fixtures, so the server
is started in ``pytest_configure`` (called for this conftest as soon as pytest
loads it) and stopped in ``pytest_unconfigure``.

Also, unless given on the command line, ``--nbval-sanitize-with`` defaults to
``notebooks/sanitize.cfg`` (ports, session ids, element ids and times differ
between runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent
TESTS = NOTEBOOKS.parent / "tests"
APPS = TESTS / "interop" / "apps"
ENV_VAR = "BOKEH_NB_SERVER"

_server: object | None = None
_previous: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Start the server, export its URL and default the sanitize file."""
    global _server, _previous
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from bokeh_server import BokehServer

    if getattr(config.option, "nbval_sanitize_with", "absent") is None:
        config.option.nbval_sanitize_with = str(NOTEBOOKS / "sanitize.cfg")
    server = BokehServer.start(sorted(APPS.glob("*.py")))
    _server = server
    _previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = server.http_url()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the server and restore the environment."""
    global _server
    from bokeh_server import BokehServer

    if isinstance(_server, BokehServer):
        _server.stop()
    _server = None
    if _previous is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = _previous
