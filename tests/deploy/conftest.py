"""Fixtures of the deployment tests: nginx in front of real ``bokeh serve`` processes.

Everything runs on 127.0.0.1 as children of the test process:

* ``start_nginx`` (function): a factory that starts Debian's nginx with a
  configuration generated for the test (see ``nginx_proxy.proxy_config``), in the
  test's own ``tmp_path``, and stops it when the test ends. A missing nginx fails
  the test with an explanation; it is never skipped.
* ``start_upstream`` (function): a factory for ``bokeh serve`` processes serving
  apps of ``tests/deploy/apps`` (``whoami``) and ``tests/interop/apps``, stopped
  when the test ends.
* ``tls`` (function): a throwaway CA (``trustme``) and a server certificate for
  ``127.0.0.1`` and ``localhost`` written as PEM files for nginx
  (``TlsSetup.client_context()`` trusts that CA only).

Helpers and fixture types live in ``deploy_support.py``; import them from there.

Marker policy: tests marked ``slow`` in this directory (the 60 s load run) are
deselected, and reported as deselected, unless the ``-m`` expression mentions
``slow`` (``pytest -m slow tests/deploy``), so the default run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import trustme
from bokeh_server import BokehServer

from .deploy_support import (
    DEPLOY_DIR,
    StartNginx,
    StartUpstream,
    TlsSetup,
    app_path,
    write_server_cert,
)
from .nginx_proxy import Nginx, NginxMissing, find_nginx


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect this directory's ``slow`` tests unless ``-m`` asks for ``slow``."""
    if "slow" in (config.option.markexpr or ""):
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        in_deploy = DEPLOY_DIR in Path(str(item.path)).parents
        (dropped if in_deploy and item.get_closest_marker("slow") else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# -- nginx ------------------------------------------------------------------------


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """Start nginx instances in ``tmp_path/nginx-N``; all are stopped at teardown."""
    try:
        find_nginx()
    except NginxMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    started: list[Nginx] = []

    def start(http_block: str, *, tls: bool) -> Nginx:
        nginx = Nginx.start(http_block, tls=tls, workdir=tmp_path / f"nginx-{len(started)}")
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


# -- bokeh serve upstreams ------------------------------------------------------------


@pytest.fixture
def start_upstream() -> Iterator[StartUpstream]:
    """A factory of ``bokeh serve`` processes for named apps (see :func:`app_path`)."""
    servers: list[BokehServer] = []

    def start(
        apps: Sequence[str],
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> BokehServer:
        server = BokehServer.start(
            [app_path(name) for name in apps], extra_args=extra_args, env=env
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> TlsSetup:
    """A fresh CA and a server certificate for ``127.0.0.1`` and ``localhost``."""
    ca = trustme.CA()
    return TlsSetup(ca=ca, files=write_server_cert(ca, tmp_path / "tls", "127.0.0.1", "localhost"))
