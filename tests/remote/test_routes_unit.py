"""The pieces of the remote support that need no server: no sockets, no kernel.

* which route a kernel picks for a view (``BokehClient.view_url``, the
  environment a Jupyter server with the extension gives its kernels, the host);
* the loader a proxied view carries;
* the contract shared by the kernel and the extension (loopback hosts, the port
  registry) and the proxy's allow-list and autoload rewrite.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tornado import web

import bokeh_nb_client.jupyter as jupyter_package
from bokeh_nb_client.jupyter import display
from bokeh_nb_client.jupyter.config import BokehClient
from bokeh_nb_client.server_extension.config import BokehProxy
from bokeh_nb_client.server_extension.contract import (
    ENV_PORTS_DIR,
    ENV_PROXY,
    PortRegistry,
    is_loopback_host,
)
from bokeh_nb_client.server_extension.handlers import SENTINEL_ORIGIN, Upstreams, autoload_rewrite

SESSION_ID = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3k"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PortRegistry:
    """The environment of a kernel started by a Jupyter server with the extension."""
    ports = PortRegistry.create(tmp_path)
    monkeypatch.setenv(ENV_PROXY, "bokeh-proxy")
    monkeypatch.setenv(ENV_PORTS_DIR, str(ports.directory))
    return ports


def use_config(monkeypatch: pytest.MonkeyPatch, view_url: str) -> None:
    monkeypatch.setattr(jupyter_package, "_config", BokehClient(view_url=view_url))


# -- the kernel's choice ----------------------------------------------------------


def test_auto_is_direct_outside_a_jupyter_server_with_the_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_PROXY, raising=False)
    monkeypatch.delenv(ENV_PORTS_DIR, raising=False)
    assert display._view_route("http://localhost:5006/app") == "direct"


def test_auto_goes_through_the_proxy_for_local_servers_and_registers_the_port(
    registry: PortRegistry,
) -> None:
    assert display._view_route("http://127.0.0.1:5100/app") == "auto"
    assert 5100 in registry
    assert display._view_route("http://localhost/app") == "auto"
    assert 80 in registry


@pytest.mark.parametrize(
    "url", ["http://dashboards.example:5006/app", "https://localhost:5006/app", "http://10.0.0.5/a"]
)
def test_auto_is_direct_for_servers_the_proxy_cannot_reach(
    registry: PortRegistry, url: str
) -> None:
    assert display._view_route(url) == "direct"
    assert not list(registry.directory.iterdir())


def test_proxy_forces_the_proxy_and_refuses_other_hosts(
    registry: PortRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_config(monkeypatch, "proxy")
    assert display._view_route("http://[::1]:5007/app") == "proxy"
    assert 5007 in registry
    with pytest.raises(ValueError, match="only reaches http servers on its own host"):
        display._view_route("http://dashboards.example:5006/app")


def test_direct_is_always_direct(registry: PortRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    use_config(monkeypatch, "direct")
    assert display._view_route("http://localhost:5006/app") == "direct"
    assert 5006 not in registry


def test_a_vanished_registry_does_not_stop_the_view(
    registry: PortRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.remove()
    assert display._view_route("http://localhost:5006/app") == "auto"
    assert "could not register port 5006" in caplog.text


# -- the proxied view --------------------------------------------------------------


def test_a_proxied_view_carries_the_loader_instead_of_the_servers_tag() -> None:
    view = display.inline_view("http://localhost:5100/dash/app", SESSION_ID, route="auto")
    markup = view.html
    assert 'data-route="auto"' in markup
    assert "autoload.js?bokeh-autoload-element" not in markup  # no server-made tag
    found = re.search(r"window\.bokehNbClient\.render\((\{.*?\})\);</script>", markup)
    assert found is not None
    proxy = json.loads(found.group(1))["proxy"]
    assert re.fullmatch(r"bnc-autoload-[0-9a-f]{32}", proxy["elementId"])
    assert f'<div id="{proxy["elementId"]}"></div>' in markup
    assert proxy["port"] == 5100
    assert proxy["appPath"] == "/dash/app"
    assert proxy["fallback"] is True
    assert proxy["proxyPath"] == "bokeh-proxy/"
    assert json.loads(found.group(1))["sessionId"] == SESSION_ID
    forced = display.inline_view("http://localhost:5100/", SESSION_ID, route="proxy").html
    forced_found = re.search(r"window\.bokehNbClient\.render\((\{.*?\})\);</script>", forced)
    assert forced_found is not None
    forced_proxy = json.loads(forced_found.group(1))["proxy"]
    assert forced_proxy["fallback"] is False
    assert forced_proxy["appPath"] == ""


def test_loader_values_cannot_close_the_script() -> None:
    markup = display.inline_view(
        "http://localhost:5006/a</script><script>alert(1)", SESSION_ID, route="proxy"
    ).html
    # The only raw occurrence is the HTML-escaped "loading" text.
    assert "</script><script>alert" not in markup
    assert "\\u003c/script\\u003e" in markup


def test_a_direct_view_is_unchanged() -> None:
    markup = display.inline_view("http://localhost:5006/app", SESSION_ID).html
    assert "data-route" not in markup
    assert "http://localhost:5006/app/autoload.js?bokeh-autoload-element" in markup


# -- the contract and the proxy's rules ---------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("app.localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_port_registry(tmp_path: Path) -> None:
    ports = PortRegistry.create(tmp_path / "runtime")
    assert ports.directory.stat().st_mode & 0o077 == 0  # private to the user
    ports.register(5100)
    assert 5100 in ports
    assert 5101 not in ports
    assert "5100" not in ports
    with pytest.raises(ValueError, match="not a TCP port"):
        ports.register(70000)
    ports.remove()
    assert not ports.directory.exists()
    assert 5100 not in ports


def test_upstreams_allow_configured_and_registered_ports(tmp_path: Path) -> None:
    ports = PortRegistry.create(tmp_path)
    ports.register(5200)
    upstreams = Upstreams(BokehProxy(allowed_ports=[5006]), ports)
    assert upstreams.allows(5006)
    assert upstreams.allows(5200)
    assert not upstreams.allows(5201)
    assert not upstreams.allows(0)
    with pytest.raises(web.HTTPError) as refused:
        upstreams.port("5201")
    assert refused.value.status_code == 403
    strict = Upstreams(BokehProxy(allowed_ports=[5006], allow_registered_ports=False), ports)
    assert not strict.allows(5200)


PROXY = "/user/test/bokeh-proxy/5006"


@pytest.mark.parametrize(
    ("absolute", "app_path", "root"),
    [
        (f"https://hub.example{PROXY}/app", "/app", f"https://hub.example{PROXY}"),
        (f"http://127.0.0.1:8888{PROXY}/pre/app/", "/pre/app", f"http://127.0.0.1:8888{PROXY}"),
        (f"http://127.0.0.1:8888{PROXY}", "", f"http://127.0.0.1:8888{PROXY}"),
        (
            f"http://h{PROXY.replace('test', 'a%40b')}/app",
            "/app",
            f"http://h{PROXY.replace('test', 'a%40b')}",
        ),
    ],
)
def test_autoload_rewrite_swaps_the_absolute_url_for_the_sentinel(
    absolute: str, app_path: str, root: str
) -> None:
    proxy = root.split("//", 1)[1].split("/", 1)[1]
    arguments = [("bokeh-autoload-element", "x"), ("bokeh-absolute-url", absolute)]
    upstream, browser_root = autoload_rewrite(arguments, app_path, "/" + proxy)
    assert browser_root == root
    assert upstream == [
        ("bokeh-autoload-element", "x"),
        ("bokeh-absolute-url", SENTINEL_ORIGIN + app_path),
    ]


def test_autoload_rewrite_leaves_a_request_without_absolute_url_alone() -> None:
    assert autoload_rewrite([("a", "1")], "/app", PROXY) == ([("a", "1")], None)


@pytest.mark.parametrize(
    "absolute",
    [
        "http://evil.example/elsewhere/app",
        f"http://h{PROXY}/other",
        f"http://h{PROXY}x/app",
        f'http://h"{PROXY}/app',
        f"http://h{PROXY}\\/app",
        f"javascript:alert(1)//{PROXY}/app",
        f"http://h/{PROXY}<x>/app",
    ],
)
def test_autoload_rewrite_refuses_foreign_or_unsafe_urls(absolute: str) -> None:
    with pytest.raises(web.HTTPError) as refused:
        autoload_rewrite([("bokeh-absolute-url", absolute)], "/app", PROXY)
    assert refused.value.status_code == 400
