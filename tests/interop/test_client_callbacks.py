"""Client-side document callbacks (PROTOCOL.md §7 items 13 to 16) on a real server.

In a script (no running loop) they run on the home thread's private loop while a
blocking call or ``loop_until_closed()`` runs, as in ``bokeh.client``; with the
async API they run on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from bokeh.document import Document
from bokeh.models import Div
from bokeh_server import BokehServer

from bokeh_nb_client import ClientSession, push_session, push_session_async

pytestmark = pytest.mark.interop

Adder = Callable[[Document, Callable[[], Any]], Any]

ADDERS: dict[str, Adder] = {
    "timeout": lambda doc, cb: doc.add_timeout_callback(cb, 10),
    "next_tick": lambda doc, cb: doc.add_next_tick_callback(cb),
    "periodic": lambda doc, cb: doc.add_periodic_callback(cb, 10),
}


def _doc_with_div() -> tuple[Document, Div]:
    doc = Document()
    div = Div(name="out", text="start")
    doc.add_root(div)
    return doc, div


@pytest.mark.parametrize("kind", sorted(ADDERS))
@pytest.mark.parametrize("added_before_push", [False, True], ids=["after_push", "before_push"])
def test_async_callback_runs_in_loop_until_closed(
    bokeh_server: BokehServer, kind: str, added_before_push: bool
) -> None:
    doc, div = _doc_with_div()
    home = threading.get_ident()
    record: dict[str, Any] = {"runs": 0}
    holder: dict[str, Any] = {}
    ready = asyncio.Event()  # set once the session exists (a callback may run during push)

    async def callback() -> None:
        await ready.wait()
        record["runs"] += 1
        record["thread"] = threading.get_ident()
        await asyncio.sleep(0.001)  # awaits in between, as bokeh's tests do
        div.text = f"ran {kind}"
        if kind == "periodic" and record["runs"] < 3:
            return
        holder["session"].force_roundtrip()  # a blocking call from inside a callback
        holder["session"].close()

    if added_before_push:
        handle = ADDERS[kind](doc, callback)
        session = push_session(doc, url=bokeh_server.http_url("empty"))
    else:
        session = push_session(doc, url=bokeh_server.http_url("empty"))
        handle = ADDERS[kind](doc, callback)
    holder["session"] = session
    ready.set()
    session.loop_until_closed()
    assert not session.connected
    assert record["thread"] == home
    assert record["runs"] == (3 if kind == "periodic" else 1)
    if kind == "periodic":
        doc.remove_periodic_callback(handle)
    else:
        with pytest.raises(ValueError, match="already"):
            (doc.remove_timeout_callback if kind == "timeout" else doc.remove_next_tick_callback)(
                handle
            )
    with ClientSession(session.id, session.url) as other:
        other.pull()
        assert other.document is not None
        assert other.document.select_one({"name": "out"}).text == f"ran {kind}"


def test_callbacks_with_the_async_api_run_on_the_callers_loop(bokeh_server: BokehServer) -> None:
    async def scenario() -> None:
        doc, div = _doc_with_div()
        ran = asyncio.Event()
        loop = asyncio.get_running_loop()
        seen: dict[str, Any] = {}

        def callback() -> None:
            seen["loop"] = asyncio.get_running_loop()
            div.text = "from the loop"
            ran.set()

        session = await push_session_async(doc, url=bokeh_server.http_url("empty"))
        async with session:
            doc.add_timeout_callback(callback, 5)
            async with asyncio.timeout(5):
                await ran.wait()
            await session.force_roundtrip()
        assert seen["loop"] is loop

    asyncio.run(scenario())


def test_callbacks_stop_when_the_session_closes(bokeh_server: BokehServer) -> None:
    doc, _div = _doc_with_div()
    session = push_session(doc, url=bokeh_server.http_url("empty"))
    runs: list[int] = []
    doc.add_periodic_callback(lambda: runs.append(1), 5)
    session.force_roundtrip()
    session.close()
    count = len(runs)
    # After close the private home loop may run again (another blocking call), but
    # the cancelled callback must not.
    with ClientSession(session.id, session.url) as other:
        other.pull()
        other.force_roundtrip()
    assert len(runs) == count
