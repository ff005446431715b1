"""Waiting for documents to reach a state, without sleeps as synchronisation.

Async sessions: ``await changed(doc, predicate)`` wakes on every change event of
the document (set from ``doc.on_change``), so it waits exactly as long as needed.
Sync sessions in a test process (no running loop): ``poll_until`` runs
``force_roundtrip()``, which applies every patch that arrived before its reply,
until the predicate holds or the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bokeh.document import Document

from bokeh_nb_client import ClientSession


async def changed(doc: Document, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Return once ``predicate()`` holds, re-checking after each change of ``doc``."""
    wake = asyncio.Event()

    def on_change(event: Any) -> None:
        wake.set()

    doc.on_change(on_change)
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await wake.wait()
                wake.clear()
    finally:
        doc.remove_on_change(on_change)


def poll_until(
    session: ClientSession, predicate: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Round-trip until ``predicate()`` holds; raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        session.force_roundtrip()
