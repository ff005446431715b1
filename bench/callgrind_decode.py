"""Profile probe: user-space instructions to decode a pulled 32 MB document (bench/README.md).

::

    for mode in none setup ours bokeh; do
        valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$mode \\
            python bench/callgrind_decode.py $mode 2>&1 | grep Collected
    done

Every mode builds the same PULL-DOC-REPLY content and buffers (two float64
columns of 2,000,000 rows). ``ours`` hands the buffers over as the receive path
does (writable memoryviews of their own memory) and ``setup`` stops right
after that; ``bokeh`` passes ``bytes``, which bokeh's decoder copies, and
``none`` stops before decoding. Decode cost: ``ours - setup`` against
``bokeh - none``. Instruction counts miss the kernel's part (page faults of
the copies), which the CPU-time cases of ``run.py`` include.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from bokeh.document import Document
from bokeh.models import ColumnDataSource

from bokeh_nb_client import _bokeh

ROWS = 2_000_000


def main(mode: str) -> None:
    doc = Document()
    x = np.arange(ROWS, dtype=np.float64)
    doc.add_root(ColumnDataSource(name="big", data={"x": x, "y": np.ones(ROWS)}))
    text, buffers = _bokeh.document_content(doc)
    content = json.loads(text)
    wire: list[tuple[str, bytes | memoryview]]
    if mode in ("ours", "setup"):
        wire = [(bid, memoryview(np.frombuffer(data, np.uint8).copy())) for bid, data in buffers]
    else:
        wire = list(buffers)
    if mode in ("ours", "bokeh"):
        _bokeh.new_document_from_reply(content, wire)


if __name__ == "__main__":
    main(sys.argv[1])
