"""Two kernels writing one property converge on the server's value (issue 11 item 2).

Two real kernels join one server session; in each trial both write the same
Slider 100 times in concurrently running cells, then each runs two round trips.
Every kernel must then hold the server's value. Before pending writes were
tracked, 30 of 30 such trials ended with one kernel different from the server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bokeh_server import BokehServer
from kernel_driver import KernelDriver, running_kernel

from bokeh_nb_client import pull_session

pytestmark = pytest.mark.kernel

TRIALS = 10
WRITES = 100


@pytest.fixture(scope="module")
def second_kernel() -> Iterator[KernelDriver]:
    """A second running ipykernel."""
    with running_kernel() as driver:
        yield driver


def _value(kernel: KernelDriver) -> int:
    result = kernel.execute("print(_slider.value)\n")
    return int(result.stdout.split()[-1])


def test_two_kernels_writing_one_slider_converge_on_the_server_value(
    kernel: KernelDriver, second_kernel: KernelDriver, bokeh_server: BokehServer
) -> None:
    url = bokeh_server.http_url("empty")
    setup = kernel.execute(
        "from bokeh.document import Document\n"
        "from bokeh.models import Slider\n"
        "from bokeh_nb_client import push_session\n"
        "_doc = Document()\n"
        "_doc.add_root(Slider(name='s', start=0, end=1_000_000, value=0))\n"
        f"_session = push_session(_doc, url={url!r})\n"
        "_slider = _doc.select_one({'name': 's'})\n"
        "print(_session.id)\n"
    )
    session_id = setup.stdout.split()[-1]
    second_kernel.execute(
        "from bokeh_nb_client import pull_session\n"
        f"_session = pull_session(session_id={session_id!r}, url={url!r})\n"
        "_slider = _session.document.select_one({'name': 's'})\n"
    )
    for trial in range(TRIALS):
        cells = [
            (
                k,
                k.submit(
                    f"for _i in range({WRITES}):\n"
                    f"    _slider.value = {1000 * trial + 500 * n} + _i\n"
                    "_session.force_roundtrip()\n"
                ),
            )
            for n, k in enumerate((kernel, second_kernel))
        ]
        for k, msg_id in cells:
            k.collect(msg_id)
        for k in (kernel, second_kernel, kernel, second_kernel):
            k.execute("_session.force_roundtrip()\n")
        with pull_session(session_id=session_id, url=url) as observer:
            assert observer.document is not None
            truth = observer.document.select_one({"name": "s"}).value
        assert [_value(kernel), _value(second_kernel)] == [truth, truth], f"trial {trial}"
