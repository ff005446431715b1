"""The nginx fixture itself: loud failures, private files, no stray processes."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from . import nginx_proxy
from .deploy_support import StartNginx
from .nginx_proxy import Nginx, NginxMissing, find_nginx, proxy_config

pytestmark = pytest.mark.interop


def test_missing_nginx_is_an_error_with_instructions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(nginx_proxy, "_DEBIAN_NGINX", tmp_path / "no-nginx-here")
    with pytest.raises(NginxMissing, match=r"apt-get install -y nginx"):
        find_nginx()


def test_a_broken_config_fails_quoting_the_error_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 1.*unknown directive"):
        Nginx.start("http {\n    no_such_directive on;\n}\n", tls=False, workdir=tmp_path)


def test_runs_in_its_own_directory_and_leaves_no_process(
    start_nginx: StartNginx, tmp_path: Path
) -> None:
    nginx = start_nginx(proxy_config(upstream_ports=[1]), tls=False)
    assert nginx.workdir.is_relative_to(tmp_path)
    assert nginx.pid is not None
    master = psutil.Process(nginx.pid)
    workers = master.children()
    assert workers, "nginx runs a master and a worker"
    # The one upstream (port 1) refuses: nginx answers 502 itself.
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(nginx.url("/bokeh/anything"), timeout=5)
    assert caught.value.code == 502
    config = nginx.config_path.read_text(encoding="utf-8")
    assert "/var/" not in config and "/etc/" not in config
    for name in ("nginx.pid", "error.log", "access.log", "proxy_temp", "client_body_temp"):
        assert (nginx.workdir / name).exists(), name
    nginx.wait_for_access('"GET /bokeh/anything HTTP/1.1" 502 upstream=127.0.0.1:1')
    nginx.stop()
    assert not nginx.is_running()
    for process in (master, *workers):
        assert not process.is_running(), f"nginx process {process.pid} survived stop()"
