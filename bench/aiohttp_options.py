"""Profile probe: do aiohttp's own options change the floor's receive cost? (bench/README.md)

::

    python bench/aiohttp_options.py ws://127.0.0.1:PORT/large/ws ws://127.0.0.1:PORT/tiny/ws

Pulls the large document on raw aiohttp with ``read_bufsize`` 64 KiB / 4 MiB and
``max_msg_size`` 0 / 100 MiB, twice each, and prints the process CPU time, how
many times the transport called aiohttp's protocol with data, and the CPU time
spent inside those calls (aiohttp's websocket reader). Not part of ``run.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

import aiohttp
import aiohttp.client_proto
from bokeh.core.types import ID
from bokeh.util.token import generate_jwt_token, generate_session_id
from common import cpu_seconds

_calls = [0, 0.0]
_original = aiohttp.client_proto.ResponseHandler.data_received


def _counted(self: Any, data: bytes) -> None:
    start = time.thread_time()
    _original(self, data)
    _calls[0] += 1
    _calls[1] += time.thread_time() - start


aiohttp.client_proto.ResponseHandler.data_received = _counted  # type: ignore[method-assign]


async def pull(url: str, read_bufsize: int, max_msg_size: int) -> tuple[float, int, float]:
    """CPU seconds of one pull, data_received calls, and CPU seconds inside them."""
    sid = ID(generate_session_id(secret_key=None, signed=False))
    token = generate_jwt_token(sid, secret_key=None, signed=False, expiration=300)
    async with aiohttp.ClientSession(read_bufsize=read_bufsize) as http:
        ws = await http.ws_connect(url, protocols=("bokeh", token), max_msg_size=max_msg_size)
        for _ in range(3):  # ACK
            await ws.receive()
        _calls[:] = [0, 0.0]
        start = cpu_seconds()
        for text in ('{"msgid":"1","msgtype":"PULL-DOC-REQ"}', "{}", "{}"):
            await ws.send_str(text)
        header = json.loads((await ws.receive()).data)
        await ws.receive()
        await ws.receive()
        for _ in range(2 * header.get("num_buffers", 0)):
            await ws.receive()
        result = (cpu_seconds() - start, int(_calls[0]), float(_calls[1]))
        await ws.close()
    return result


async def main(large: str, warm: str) -> None:
    await pull(warm, 2**16, 0)
    for read_bufsize, max_msg_size in [
        (2**16, 0),
        (2**22, 0),
        (2**16, 100 * 2**20),
        (2**22, 100 * 2**20),
    ] * 2:
        gc.collect()
        cpu, calls, inside = await pull(large, read_bufsize, max_msg_size)
        print(
            f"read_bufsize={read_bufsize} max_msg_size={max_msg_size}: CPU {cpu:.4f} s, "
            f"data_received calls {calls}, inside them {inside:.4f} s"
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
