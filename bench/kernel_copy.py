"""The kernel's own limit for receiving a payload over loopback TCP (case 2's "kernel" row).

::

    python bench/kernel_copy.py --bytes 33554432 [--repeats 3]

A forked sender writes ``--bytes`` from memory it prepared beforehand; this
process receives them with ``recv_into`` straight into one fresh ``np.empty``
buffer (as our receive path does for a large payload: no user-space copy, no
websocket, no Python per byte). Its CPU time is what the kernel charges a
receiver for the copy, the page faults of fresh memory and loopback TCP; no
client can receive the same bytes for less. Prints one JSON object: the median
CPU seconds, minor page faults and GB/s of ``--repeats`` transfers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import sys

import numpy as np


def _usage() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_minflt


def measure(nbytes: int, repeats: int) -> dict[str, object]:
    """Receive ``nbytes`` ``repeats`` times from a forked sender; CPU seconds of each."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # the sender
        try:
            conn = socket.create_connection(("127.0.0.1", port))
            data = np.ones(nbytes, dtype=np.uint8).tobytes()
            for _ in range(repeats):
                conn.recv(1)  # go
                conn.sendall(data)
            conn.recv(1)
        finally:
            os._exit(0)
    conn, _ = server.accept()
    cpu: list[float] = []
    faults: list[int] = []
    try:
        for _ in range(repeats):
            conn.sendall(b"x")
            cpu_start, faults_start = _usage()
            view = memoryview(np.empty(nbytes, dtype=np.uint8))  # type: ignore[arg-type]
            got = 0
            while got < nbytes:
                got += conn.recv_into(view[got:])
            cpu_end, faults_end = _usage()
            cpu.append(cpu_end - cpu_start)
            faults.append(faults_end - faults_start)
            del view
        conn.sendall(b"x")
    finally:
        conn.close()
        server.close()
        os.waitpid(pid, 0)
    median = statistics.median(cpu)
    return {
        "bytes": nbytes,
        "cpu_s": median,
        "cpu_s_all": cpu,
        "minflt": statistics.median(faults),
        "gb_per_s": nbytes / median / 1e9 if median else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=32 * 2**20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.bytes, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
