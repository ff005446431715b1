"""The synchronous and async APIs inside a real kernel, against a real ``bokeh serve``.

* ``pull_session`` in a cell returns a connected session (``bokeh.client`` raises
  "Cannot run the event loop while another loop is running" here).
* Server changes (the ``ticker`` app's 10 ms periodic callback) are applied while
  the kernel is idle, with no cell running: a document callback in the kernel
  prints once it has seen a few, and the test waits for that output. A later cell
  sees a newer value.
* They are also applied during ``await asyncio.sleep(...)`` in a cell.
* A busy synchronous cell that streams with ``time.sleep`` sends its rows live: a
  second client in the test process sees them while the cell is still running.
* The async API on the kernel's loop receives changes while idle, too.
"""

from __future__ import annotations

import time

import pytest
from bokeh_server import BokehServer
from kernel_driver import KernelDriver

from bokeh_nb_client import pull_session

pytestmark = pytest.mark.kernel


def test_pull_session_in_a_cell_returns_a_connected_session(
    kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    result = kernel.execute(
        "from bokeh_nb_client import pull_session\n"
        f"s1 = pull_session(url={bokeh_server.http_url('basic')!r})\n"
        "print(s1.connected, s1.status.state.value, s1.document.get_model_by_name('div').text)\n"
        "s1.close()\n"
        "print(s1.status.state.value)\n"
    )
    assert result.stdout.split() == ["True", "connected", "hello", "closed"]


def test_server_changes_arrive_while_the_kernel_is_idle(
    kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    kernel.execute(
        "from bokeh_nb_client import pull_session\n"
        f"ticker = pull_session(url={bokeh_server.http_url('ticker')!r})\n"
        "clock = ticker.document.get_model_by_name('clock')\n"
        "first_clock = clock.text\n"
        "_idle_changes = []\n"
        "def _on_clock(attr, old, new):\n"
        "    _idle_changes.append(new)\n"
        "    if len(_idle_changes) == 5:\n"
        "        print('five clock changes applied', flush=True)\n"
        "clock.on_change('text', _on_clock)\n"
    )
    # No cell runs now: the patches can only be applied by the kernel's loop.
    kernel.wait_for_stream("five clock changes applied", timeout=10)
    result = kernel.execute(
        "print(float(clock.text) > float(first_clock or 0), len(_idle_changes) >= 5)\n"
        "clock.remove_on_change('text', _on_clock)\n"
        "ticker.close()\n"
    )
    assert result.stdout.split() == ["True", "True"]


def test_server_changes_arrive_during_await_in_a_cell(
    kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    result = kernel.execute(
        "import asyncio\n"
        "from bokeh_nb_client import pull_session\n"
        f"ticker2 = pull_session(url={bokeh_server.http_url('ticker')!r})\n"
        "count2 = ticker2.document.get_model_by_name('count')\n"
        "before = int(count2.text)\n"
        "await asyncio.sleep(0.3)\n"
        "after = int(count2.text)\n"
        "ticker2.close()\n"
        "print(after > before)\n"
    )
    assert result.stdout.strip() == "True"


def test_a_busy_synchronous_cell_streams_live(
    kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    sink_url = bokeh_server.http_url("sink")
    kernel.execute(
        "import time\n"
        "from bokeh_nb_client import pull_session\n"
        f"sink_session = pull_session(url={sink_url!r})\n"
        "sink = sink_session.document.get_model_by_name('sink')\n"
    )
    session_id = kernel.execute("print(sink_session.id)").stdout.strip()
    # The observer pulls before the stream starts: a client that pulls while
    # another one streams can miss a row (a core race, see tests/kernel/README.md).
    observer = pull_session(session_id=session_id, url=sink_url)
    busy = kernel.submit(
        "for i in range(50):\n    sink.stream({'x': [i], 'y': [i * i]})\n    time.sleep(0.02)\n"
    )
    try:
        rows_while_busy = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            observer.force_roundtrip()  # a round trip, not a sleep, paces this loop
            rows_while_busy = len(observer.document.get_model_by_name("sink").data["x"])
            if rows_while_busy:
                break
        still_busy = kernel.is_busy(busy)
        assert rows_while_busy > 0, "no streamed row reached the server while the cell ran"
        assert still_busy, "the cell finished before the first rows were observed"
        assert rows_while_busy < 50
        kernel.collect(busy)
        # The last rows may still be on their way: the kernel's round trip returns
        # once the server has them, the observer's once it has applied them.
        kernel.execute("sink_session.force_roundtrip()")
        observer.force_roundtrip()
        sink_model = observer.document.get_model_by_name("sink")
        assert list(sink_model.data["x"]) == list(range(50))
        assert list(sink_model.data["y"]) == [i * i for i in range(50)]
    finally:
        observer.close()
        kernel.execute("sink_session.close()")


def test_async_session_receives_changes_while_idle(
    kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    kernel.execute(
        "from bokeh_nb_client import pull_session_async\n"
        f"aticker = await pull_session_async(url={bokeh_server.http_url('ticker')!r})\n"
        "acount = aticker.document.get_model_by_name('count')\n"
        "_async_seen = []\n"
        "def _on_count(attr, old, new):\n"
        "    _async_seen.append(new)\n"
        "    if len(_async_seen) == 5:\n"
        "        print('async session applied five changes', flush=True)\n"
        "acount.on_change('text', _on_count)\n"
    )
    kernel.wait_for_stream("async session applied five changes", timeout=10)
    result = kernel.execute(
        "acount.remove_on_change('text', _on_count)\n"
        "await aticker.close()\n"
        "print(len(_async_seen) >= 5)\n"
    )
    assert result.stdout.strip() == "True"
