"""Issue 13 item 6: the version-mismatch warning is issued once per session, as a
``VersionMismatchWarning`` only (not also logged), and names the user's line.

The fake server claims bokeh 2.4.3; it runs in a thread of its own
(``fakes.ServerThread``) so that the test thread can block in the sync API.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import warnings
from collections.abc import Callable
from typing import TypeVar

import pytest
from bokeh.document import Document
from bokeh.models.widgets import Div
from fakes import FakeBokehServer, ServerThread, hosted

from bokeh_nb_client import AsyncClientSession, ClientSession
from bokeh_nb_client.exceptions import VersionMismatchWarning

T = TypeVar("T")

WAIT = 20.0


def served() -> Document:
    doc = Document()
    doc.add_root(Div(text="hello", name="div"))
    return doc


def in_new_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread with no event loop (a script's main thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(WAIT)


def test_sync_mismatch_warns_once_at_the_users_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bokeh_nb_client")
    with ServerThread(FakeBokehServer(served(), version="2.4.3")) as thread:

        def script() -> tuple[list[warnings.WarningMessage], int]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                session = ClientSession(websocket_url=thread.url)
                line = sys._getframe().f_lineno + 1
                session.pull()
                session.force_roundtrip()
                session.request_server_info()
                session.pull()
                session.close()
            return caught, line

        caught, line = in_new_thread(script)
    mismatches = [w for w in caught if issubclass(w.category, VersionMismatchWarning)]
    assert len(mismatches) == 1, [str(w.message) for w in mismatches]
    [warning] = mismatches
    assert "2.4.3" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, line)
    logged = [r for r in caplog.records if "2.4.3" in r.getMessage()]
    assert logged == []


def test_async_mismatch_warns_once_outside_the_package() -> None:
    async def main() -> list[warnings.WarningMessage]:
        server = FakeBokehServer(served(), version="2.4.3")
        async with hosted(server) as url:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                session = AsyncClientSession(websocket_url=url)
                await session.pull()
                await session.force_roundtrip()
                await session.close()
        return caught

    caught = asyncio.run(main())
    mismatches = [w for w in caught if issubclass(w.category, VersionMismatchWarning)]
    assert len(mismatches) == 1
    assert mismatches[0].filename == __file__  # the asyncio.run(...) line: outside the package
