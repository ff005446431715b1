"""A Bokeh server started inside the kernel, then the sync API in a cell (issue 13 item 1).

``Server(...)`` in a cell listens on the kernel's own loop, which cannot run while
a synchronous cell blocks: ``pull_session`` could never be answered. It must fail
at once with ``ServerOnCallersLoop`` naming ``pull_session_async`` (not wait for
its 30 s timeout), and what the error recommends must work in the next cell.
"""

from __future__ import annotations

import pytest
from kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel

START_SERVER = """
from bokeh.application import Application
from bokeh.application.handlers import FunctionHandler
from bokeh.models import Div
from bokeh.server.server import Server

def _make(doc):
    doc.add_root(Div(text="served by the kernel", name="div"))

in_kernel = Server({"/": Application(FunctionHandler(_make))}, port=0, address="127.0.0.1")
in_kernel.start()
in_kernel_url = f"http://127.0.0.1:{in_kernel.port}/"
"""

SYNC_CALL = """
from bokeh_nb_client import pull_session
from bokeh_nb_client.exceptions import ServerOnCallersLoop
try:
    pull_session(url=in_kernel_url, timeout=20)
except ServerOnCallersLoop as exc:
    print("refused", "pull_session_async" in str(exc))
"""

ASYNC_CALL = """
from bokeh_nb_client import pull_session_async
in_kernel_session = await pull_session_async(url=in_kernel_url)
print(in_kernel_session.document.get_model_by_name("div").text)
await in_kernel_session.close()
in_kernel.unlisten()
in_kernel.stop()
"""


def test_sync_call_to_a_server_in_the_kernel_fails_at_once(kernel: KernelDriver) -> None:
    kernel.execute(START_SERVER)
    # Without the check the cell blocks until pull_session's 20 s timeout, then
    # raises Timeout (an error output, no "refused" line).
    refused = kernel.execute(SYNC_CALL, timeout=60, allow_error=True)
    assert refused.stdout.split() == ["refused", "True"]
    pulled = kernel.execute(ASYNC_CALL)
    assert pulled.stdout.strip() == "served by the kernel"
