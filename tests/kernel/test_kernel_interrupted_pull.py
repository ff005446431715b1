"""An interrupted pull in a cell has no later effect (issue 11 item 1).

The kernel pulls from a frozen server, the user interrupts the cell (Ctrl-C,
``KeyboardInterrupt``), the server comes back and its late PULL-DOC-REPLY
arrives: the session must drop it. Before, the reply was installed (5 of 5
runs): every model was replaced and the user's held references stopped syncing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from bokeh_server import BokehServer, StartBokehServer
from kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel


@pytest.fixture
def frozen_later(start_bokeh_server: StartBokehServer) -> Iterator[BokehServer]:
    server = start_bokeh_server(apps=["basic"])
    yield server
    if server.is_running and server.paused:
        server.resume()


def test_interrupted_pull_is_not_installed_when_its_reply_arrives(
    kernel: KernelDriver, frozen_later: BokehServer
) -> None:
    url = frozen_later.http_url("basic")
    kernel.execute(
        "from bokeh_nb_client import pull_session\n"
        f"_ip = pull_session(url={url!r})\n"
        "_held = _ip.document.select_one({'name': 'slider'})\n"
    )
    frozen_later.pause()
    msg_id = kernel.submit("print('pulling', flush=True)\n_ip.pull()\n")
    kernel.wait_for_stream("pulling", timeout=30)
    # The PULL-DOC-REQ must be on the wire before the interrupt, or there is no
    # late reply to drop; a frozen server cannot tell us when it is, so give the
    # engine a moment (the assertions hold however long this is).
    time.sleep(1.0)
    kernel.manager.interrupt_kernel()
    result = kernel.collect(msg_id, timeout=60)
    assert result.error is not None and result.error["ename"] == "KeyboardInterrupt"
    frozen_later.resume()
    result = kernel.execute(
        "_ip.force_roundtrip()\n"
        "_ip.force_roundtrip()\n"
        "print(_ip.document.get_model_by_id(_held.id) is _held)\n"
        "_ip.close()\n"
    )
    assert result.stdout.split()[-1] == "True"
