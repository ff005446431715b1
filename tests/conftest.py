"""Shared pytest fixtures: real ``bokeh serve`` subprocesses for the interop tests.

The markers (``interop``, ``kernel``, ``browser``, ``slow``) are registered in
``pyproject.toml``.

Fixtures:

* ``bokeh_server`` (session): one server hosting every app in ``APPS_DIR`` at
  ``/<stem>``, with fast keepalive pings and fast unused-session expiry
  (:data:`FAST_SESSION_ARGS`). Tests share it, so each test should use its own
  session ids and must not stop, pause or restart it.
* ``start_bokeh_server`` (function): a factory for private servers, for tests that
  need other options (``--prefix``, ``--session-ids``, ``--auth-module``...) or
  that stop, pause or restart the server. Every server it started is stopped when
  the test ends.
* ``free_port``: a TCP port on 127.0.0.1 that was free a moment ago.
* ``apps_dir`` / ``apphelpers_dir``: where the apps and their helper modules live.

``tests/interop`` is put on ``sys.path`` here, so tests import the helpers the
same way the apps do (``from apphelpers.custom_models import BytesHolder``);
Bokeh names a custom model after its module, so both sides must agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from bokeh_server import BokehServer, StartBokehServer, find_free_port
from testapps import APPHELPERS_DIR, APPS_DIR, FAST_SESSION_ARGS, SERVER_ENV, app_paths

__all__ = ["APPHELPERS_DIR", "APPS_DIR", "FAST_SESSION_ARGS", "app_paths"]


@pytest.fixture(scope="session")
def bokeh_server() -> Iterator[BokehServer]:
    """One ``bokeh serve`` for the whole test session, hosting every app."""
    with BokehServer.start(app_paths(), extra_args=FAST_SESSION_ARGS, env=SERVER_ENV) as server:
        yield server


@pytest.fixture
def start_bokeh_server() -> Iterator[StartBokehServer]:
    """A factory that starts private servers and stops them after the test.

    Call it as ``start_bokeh_server(apps=["basic"], extra_args=("--prefix", "foo"))``.
    ``apps`` names apps in ``APPS_DIR`` (default: all of them); ``env`` changes the
    server's environment (``None`` values remove variables; :data:`SERVER_ENV` is
    the default). No options are added
    besides the address, port and origin ones.
    """
    servers: list[BokehServer] = []

    def start(
        apps: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> BokehServer:
        server = BokehServer.start(
            app_paths(apps), extra_args=extra_args, env={**SERVER_ENV, **(env or {})}
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return find_free_port()


@pytest.fixture(scope="session")
def apps_dir() -> Path:
    """The directory of the test apps (``tests/interop/apps``)."""
    return APPS_DIR


@pytest.fixture(scope="session")
def apphelpers_dir() -> Path:
    """The directory of the apps' helper modules, e.g. ``auth_cookie.py``."""
    return APPHELPERS_DIR
