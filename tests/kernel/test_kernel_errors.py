"""Errors a notebook user understands in one screen (issue 12, items 8 to 10).

In a real kernel with the extension loaded:

* an expected failure of the synchronous API (connection refused, 404) shows
  the user's own frames and our one-line error, not ``client.py``, ``engine.py``,
  ``concurrent.futures`` or the foreign errors we translated;
* an interrupted ``%bokeh_pull`` is one line;
* ``pull_session(timout=5)`` names ``pull_session`` and suggests ``timeout``;
* a DNS failure names the host and does not suggest starting ``bokeh serve``;
* ``%bokeh_pull 127.0.0.1:PORT/app`` (no scheme) is a server URL.
"""

from __future__ import annotations

import re
import socket

import pytest
from bokeh_server import BokehServer, find_free_port
from kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel

POLL_ATTEMPTS = 300
_INTERNALS = ("engine.py", "client.py", "concurrent/futures", "asyncio", "aiohttp")


@pytest.fixture(scope="module")
def ek(kernel: KernelDriver) -> KernelDriver:
    kernel.execute("%load_ext bokeh_nb_client\nfrom bokeh_nb_client import pull_session\n")
    return kernel


def _traceback(error: dict[str, object] | None) -> str:
    assert error is not None
    lines = error["traceback"]
    assert isinstance(lines, list)
    # strip the ANSI colours
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(str(line) for line in lines))


def test_an_expected_failure_shows_the_users_frames_and_one_error(ek: KernelDriver) -> None:
    port = find_free_port()
    result = ek.execute(
        "def open_dashboard():\n"
        f"    return pull_session(url='http://127.0.0.1:{port}/basic', timeout=5)\n"
        "open_dashboard()",
        allow_error=True,
    )
    text = _traceback(result.error)
    assert result.error is not None and result.error["ename"] == "ConnectError"
    assert "open_dashboard()" in text  # the user's frames
    assert f"cannot connect to ws://127.0.0.1:{port}/basic/ws" in text
    assert not [name for name in _INTERNALS if name in text], text
    assert "The above exception was the direct cause" not in text
    assert len(text.splitlines()) < 25, text
    # Nothing is lost: the exception itself is kept for %debug and %tb.
    kept = ek.execute("import sys\nprint(type(sys.last_value).__name__)").stdout
    assert kept.strip() == "ConnectError"


def test_a_404_is_short_too(ek: KernelDriver, bokeh_server: BokehServer) -> None:
    result = ek.execute(
        f"pull_session(url='{bokeh_server.http_url('no_such_app')}')", allow_error=True
    )
    text = _traceback(result.error)
    assert "HTTP 404" in text
    assert not [name for name in _INTERNALS if name in text], text


def test_a_misspelled_option_names_the_call_and_the_option(ek: KernelDriver) -> None:
    result = ek.execute("pull_session(url='http://127.0.0.1:1/app', timout=5)", allow_error=True)
    assert result.error is not None
    evalue = str(result.error["evalue"])
    assert evalue.startswith("pull_session() got an unexpected keyword argument 'timout'")
    assert "did you mean 'timeout'?" in evalue
    assert "AsyncClientSession" not in evalue


def test_a_dns_failure_names_the_host_and_does_not_blame_bokeh_serve(ek: KernelDriver) -> None:
    result = ek.execute(
        "pull_session(url='http://no-such-host.invalid:5006/app', timeout=10)", allow_error=True
    )
    assert result.error is not None
    evalue = str(result.error["evalue"])
    assert "'no-such-host.invalid' could not be resolved" in evalue
    assert "bokeh serve" not in evalue


def test_host_port_without_a_scheme_is_a_server_url(
    ek: KernelDriver, bokeh_server: BokehServer
) -> None:
    address = bokeh_server.http_url("basic").split("://", 1)[1]  # 127.0.0.1:PORT/basic
    ek.execute(f"%bokeh_pull {address} --as hp")
    check = ek.execute("print(hp.app_url, hp.connected)")
    assert check.stdout.split() == [f"http://{address}", "True"]
    ek.execute("%bokeh_close hp")


def test_an_interrupted_pull_is_one_line(ek: KernelDriver) -> None:
    # A TCP listener that accepts and never answers: once it has accepted, the
    # pull is waiting on the engine (the cell submitted it before any I/O), so the
    # interrupt lands in the blocking wait. Works on every ipykernel (no subshell).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(120)
        port = listener.getsockname()[1]
        msg_id = ek.submit(f"%bokeh_pull http://127.0.0.1:{port}/basic --as ip")
        connection, _ = listener.accept()
        with connection:
            ek.manager.interrupt_kernel()
            result = ek.collect(msg_id)
    # IPython shows a UsageError as one line on stderr, without a traceback.
    assert result.status == "error"
    assert result.error is None, _traceback(result.error)
    assert (
        result.stderr.strip() == "UsageError: %bokeh_pull: interrupted; the operation was cancelled"
    )
