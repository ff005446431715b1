"""What the kernel's own asyncio loop does between cells (STYLE.md §3, fact 2).

ipykernel#1510 reports that on ipykernel 7.x a task created in a cell stops
running once the cell completes, until another cell runs. The async API relies on
the opposite (its reader task lives on the kernel's loop), so this is checked
here, on whatever ipykernel is installed, with a pure side effect (output), no
widgets and no front end.
"""

from __future__ import annotations

import ipykernel
import pytest
from kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel


def test_reports_ipykernel_version(kernel: KernelDriver) -> None:
    result = kernel.execute("import ipykernel; print(ipykernel.__version__)")
    assert result.stdout.strip() == ipykernel.__version__


def test_task_created_in_a_cell_runs_while_the_kernel_is_idle(kernel: KernelDriver) -> None:
    kernel.execute(
        "import asyncio\n"
        "async def _bg():\n"
        "    for i in range(3):\n"
        "        await asyncio.sleep(0.05)\n"
        "    print('background task finished while idle', flush=True)\n"
        "_bg_task = asyncio.ensure_future(_bg())\n"
    )
    # No cell runs from here on: only the kernel's loop can finish the task.
    kernel.wait_for_stream("background task finished while idle", timeout=10)
    assert kernel.execute("print(_bg_task.done())").stdout.strip() == "True"


def test_call_soon_threadsafe_from_a_thread_runs_while_idle(kernel: KernelDriver) -> None:
    # This is how the synchronous API hands server patches to the kernel thread.
    kernel.execute(
        "import asyncio, threading\n"
        "_loop = asyncio.get_running_loop()\n"
        "def _report():\n"
        "    print('posted callback ran while idle', flush=True)\n"
        "def _from_thread():\n"
        "    _loop.call_soon_threadsafe(_report)\n"
        "_thread = threading.Thread(target=_from_thread)\n"
        "_thread.start()\n"
    )
    kernel.wait_for_stream("posted callback ran while idle", timeout=10)


_CLICK = {"method": "custom", "content": {"event": "click"}}


def _button_with_consumer(kernel: KernelDriver, tag: str) -> str:
    """A widget button whose click handler feeds a queue that a task consumes.

    Two queues: one fed with ``put_nowait`` straight from the handler (the
    pattern of ipykernel#1510's report), one fed through
    ``loop.call_soon_threadsafe`` (safe from any thread).
    """
    return kernel.execute(
        "import asyncio, threading\n"
        "import ipywidgets\n"
        f"_loop_{tag} = asyncio.get_running_loop()\n"
        f"_plain_{tag} = asyncio.Queue()\n"
        f"_safe_{tag} = asyncio.Queue()\n"
        f"_button_{tag} = ipywidgets.Button(description='click me')\n"
        f"def _on_click_{tag}(_):\n"
        f"    print('{tag} handler on', threading.current_thread().name, flush=True)\n"
        f"    _plain_{tag}.put_nowait('click')\n"
        f"    _loop_{tag}.call_soon_threadsafe(_safe_{tag}.put_nowait, 'click')\n"
        f"_button_{tag}.on_click(_on_click_{tag})\n"
        "async def _consume(queue, label):\n"
        "    while True:\n"
        "        await queue.get()\n"
        "        print(label, flush=True)\n"
        f"_consumers_{tag} = [\n"
        f"    asyncio.ensure_future(_consume(_plain_{tag}, '{tag}: plain queue woke')),\n"
        f"    asyncio.ensure_future(_consume(_safe_{tag}, '{tag}: threadsafe queue woke')),\n"
        "]\n"
        f"print(_button_{tag}.model_id)\n"
    ).stdout.strip()


def test_comm_message_wakes_a_consumer_task_while_idle(kernel: KernelDriver) -> None:
    # ipykernel#1510's shape: a widget's click handler (a comm message) feeds an
    # asyncio.Queue and a task created in an earlier cell must react while no
    # cell runs.
    model_id = _button_with_consumer(kernel, "main")
    kernel.send_comm_msg(model_id, _CLICK)
    assert "MainThread" in kernel.wait_for_stream("main handler on", timeout=10)
    kernel.wait_for_stream("main: plain queue woke", timeout=10)
    kernel.wait_for_stream("main: threadsafe queue woke", timeout=10)
    kernel.execute("[task.cancel() for task in _consumers_main]")


def test_comm_message_sent_to_a_subshell_is_handled_on_the_main_thread(
    kernel: KernelDriver,
) -> None:
    # JupyterLab >= 4.4 can send comm messages to kernel subshells (threads with
    # loops of their own). A handler running there would fill a main-loop queue
    # without waking it: the #1510 symptom. ipykernel 7.4 routes a comm's messages
    # to the shell that created the comm, so the handler runs on the main thread.
    if "kernel subshells" not in kernel.kernel_info().get("supported_features", []):
        pytest.skip("this ipykernel has no subshells")
    model_id = _button_with_consumer(kernel, "sub")
    kernel.send_comm_msg(model_id, _CLICK, subshell_id=kernel.create_subshell())
    assert "MainThread" in kernel.wait_for_stream("sub handler on", timeout=10)
    kernel.wait_for_stream("sub: plain queue woke", timeout=10)
    kernel.wait_for_stream("sub: threadsafe queue woke", timeout=10)
    kernel.execute("[task.cancel() for task in _consumers_sub]")
