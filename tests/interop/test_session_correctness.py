"""The synced document stays right in the situations of issue 11 (and issue 10/12 items).

Each test here failed before the change it proves:

* a request that raised (timeout, cancelled await) has no later effect;
* an oversized outgoing change raises a typed ``MessageTooBig`` from the next
  blocking call, and the session goes on working;
* a partial ColumnDataChanged merges into the existing columns, as BokehJS does;
* a request while the server is gone ends after a short grace period with a
  typed error, and a ``force_roundtrip()`` timeout names ``force_roundtrip``;
* a server that patches faster than we apply does not starve requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div, Slider
from bokeh_server import BokehServer, StartBokehServer
from waiting import changed, poll_until

from bokeh_nb_client import (
    AsyncClientSession,
    ClientSession,
    SessionState,
    SessionStatus,
    pull_session,
    pull_session_async,
    push_session,
)
from bokeh_nb_client.exceptions import (
    MessageTooBig,
    ServerUnreachable,
    SessionRecreatedWarning,
    SessionStateError,
    Timeout,
)
from bokeh_nb_client.reconnect import Reconnect

pytestmark = pytest.mark.interop


@pytest.fixture
def private_server(start_bokeh_server: StartBokehServer) -> Iterator[BokehServer]:
    """A server of our own, which a test may pause or kill."""
    server = start_bokeh_server(apps=["basic", "partial", "empty"])
    server.warm("basic")  # its tests give sessions timeouts of 1 or 2 s
    yield server
    if server.is_running and server.paused:
        server.resume()


def _held_roots(session: ClientSession) -> dict[str, object]:
    assert session.document is not None
    return {root.id: root for root in session.document.roots}


# -- item 1: a failed request has no later effect ------------------------------------


def test_timed_out_pull_is_not_installed_when_its_reply_arrives(
    private_server: BokehServer,
) -> None:
    with pull_session(url=private_server.http_url("basic"), timeout=2) as session:
        held = _held_roots(session)
        private_server.pause()
        with pytest.raises(Timeout):
            session.pull()
        private_server.resume()
        # The late PULL-DOC-REPLY arrives during this round trip; it must be dropped.
        session.force_roundtrip()
        session.force_roundtrip()
        assert session.document is not None
        for model_id, model in held.items():
            assert session.document.get_model_by_id(model_id) is model


def test_cancelled_pull_is_not_installed_when_its_reply_arrives(
    private_server: BokehServer,
) -> None:
    async def scenario() -> None:
        async with await pull_session_async(url=private_server.http_url("basic")) as session:
            assert session.document is not None
            held = {root.id: root for root in session.document.roots}
            private_server.pause()
            pull = asyncio.ensure_future(session.pull())
            await asyncio.sleep(0)
            pull.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pull
            private_server.resume()
            await session.force_roundtrip()
            await session.force_roundtrip()
            for model_id, model in held.items():
                assert session.document.get_model_by_id(model_id) is model

    asyncio.run(asyncio.wait_for(scenario(), 60))


# -- issue 10: an oversized outgoing change fails loudly and the session goes on ------


def test_oversized_outgoing_change_raises_and_session_keeps_working(
    bokeh_server: BokehServer,
) -> None:
    doc = Document()
    source = ColumnDataSource(name="s", data={"x": [0.0]})
    doc.add_root(source)
    url = bokeh_server.http_url("empty")
    with push_session(doc, url=url, max_message_size=1_000_000) as session:
        source.data = {"x": np.zeros(500_000)}  # a 4 MB buffer over the 1 MB limit
        with pytest.raises(MessageTooBig, match="max_message_size"):
            session.force_roundtrip()
        source.data = {"x": [1.0, 2.0, 3.0]}
        session.force_roundtrip()
        assert session.connected
        with pull_session(session_id=session.id, url=url) as observer:
            assert observer.document is not None
            seen = observer.document.select_one({"name": "s"})
            assert list(seen.data["x"]) == [1.0, 2.0, 3.0]


# -- item 5: a partial ColumnDataChanged merges --------------------------------------


def test_partial_column_data_change_from_server_keeps_other_columns(
    bokeh_server: BokehServer,
) -> None:
    with pull_session(url=bokeh_server.http_url("partial")) as session:
        doc = session.document
        assert doc is not None
        doc.select_one({"name": "trigger"}).text = "go"
        done = doc.select_one({"name": "done"})
        poll_until(session, lambda: done.text == "go")
        data = doc.select_one({"name": "source"}).data
        assert set(data) == {"x", "y", "z"}
        assert list(data["x"]) == [1, 2, 3]
        assert list(data["y"]) == [10, 20, 30]
        assert list(data["z"]) == ["a", "b", "c"]


def test_partial_column_data_change_to_server_keeps_other_columns(
    bokeh_server: BokehServer,
) -> None:
    url = bokeh_server.http_url("partial")
    with pull_session(url=url) as session:
        doc = session.document
        assert doc is not None
        source = doc.select_one({"name": "source"})
        source.data["z"] = ["p", "q", "r"]  # bokeh sends only column z
        session.force_roundtrip()
        with pull_session(session_id=session.id, url=url) as observer:
            assert observer.document is not None
            seen = observer.document.select_one({"name": "source"}).data
            assert {k: list(v) for k, v in seen.items()} == {
                "x": [1, 2, 3],
                "y": [0, 0, 0],
                "z": ["p", "q", "r"],
            }


# -- issue 12 items 6 and 9: requests while the server is gone -------------------------


def test_request_after_server_killed_raises_unreachable_after_grace(
    private_server: BokehServer,
) -> None:
    with pull_session(url=private_server.http_url("basic")) as session:
        lost = threading.Event()
        session.subscribe(
            lambda status: lost.set() if status.state is SessionState.RECONNECTING else None
        )
        private_server.kill()
        assert lost.wait(30), "the session did not notice the server's death"
        with pytest.raises(ServerUnreachable) as info:
            session.force_roundtrip()
        message = str(info.value)
        assert "unreachable since" in message
        assert "reconnecting" in message and "until" in message
        assert info.value.since <= info.value.until
        assert info.value.grace == Reconnect().request_grace


def test_force_roundtrip_timeout_names_force_roundtrip(private_server: BokehServer) -> None:
    with pull_session(url=private_server.http_url("basic"), timeout=1) as session:
        private_server.pause()
        with pytest.raises(Timeout, match=r"force_roundtrip\(\)") as info:
            session.force_roundtrip()
        assert "SERVER-INFO-REQ" not in str(info.value)
        private_server.resume()


# -- item 6: a server that patches faster than we apply -----------------------------


def test_requests_complete_while_server_floods_patches(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(apps=["flood"])
    outcome: list[object] = []

    def run() -> None:
        try:
            with pull_session(url=server.http_url("flood")) as session:
                for _ in range(5):
                    session.force_roundtrip()
                outcome.append(session.status)
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)  # a hang guard, not a timing assertion
    assert not worker.is_alive(), "pull_session/force_roundtrip hung under a patch flood"
    assert outcome and not isinstance(outcome[0], BaseException), outcome


def test_async_sleep_runs_while_server_floods_patches(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(apps=["flood"])

    async def scenario() -> None:
        async with await pull_session_async(url=server.http_url("flood")) as session:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                for _ in range(20):
                    await asyncio.sleep(0.01)
                    ticks += 1

            await asyncio.wait_for(ticker(), 60)
            await asyncio.wait_for(session.force_roundtrip(), 60)
            assert ticks == 20

    asyncio.run(scenario())


# -- item 2: concurrent writers converge --------------------------------------------


def test_two_writers_to_one_property_converge(bokeh_server: BokehServer) -> None:
    doc = Document()
    doc.add_root(Slider(name="s", start=0, end=100_000, value=0))
    url = bokeh_server.http_url("empty")
    with (
        push_session(doc, url=url) as first,
        pull_session(session_id=first.id, url=url) as second,
    ):
        sliders = [
            s.document.select_one({"name": "s"})  # type: ignore[union-attr]
            for s in (first, second)
        ]
        for trial in range(20):
            for i in range(100):
                sliders[0].value = 1000 * trial + i
                sliders[1].value = 1000 * trial + 500 + i
            first.force_roundtrip()
            second.force_roundtrip()
            first.force_roundtrip()
            second.force_roundtrip()
            with pull_session(session_id=first.id, url=url) as observer:
                assert observer.document is not None
                truth = observer.document.select_one({"name": "s"}).value
            assert [s.value for s in sliders] == [truth, truth], f"trial {trial}"


# -- async flavour of item 5 (incoming, applied on the caller's loop) ----------------


def test_partial_column_data_change_async(bokeh_server: BokehServer) -> None:
    async def scenario() -> None:
        session: AsyncClientSession
        async with await pull_session_async(url=bokeh_server.http_url("partial")) as session:
            doc = session.document
            assert doc is not None
            done: Div = doc.select_one({"name": "done"})
            doc.select_one({"name": "trigger"}).text = "go"
            await changed(doc, lambda: done.text == "go")
            data = doc.select_one({"name": "source"}).data
            assert set(data) == {"x", "y", "z"}

    asyncio.run(asyncio.wait_for(scenario(), 60))


# -- item 3: threads -------------------------------------------------------------------


def test_next_tick_callback_from_a_worker_thread_wakes_the_idle_loop(
    start_bokeh_server: StartBokehServer,
) -> None:
    # A private server with bokeh's default keep-alive (37 s): no ping wakes the
    # client's loop, so only the scheduling itself can.
    server = start_bokeh_server(apps=["basic"])

    async def scenario() -> None:
        async with await pull_session_async(url=server.http_url("basic")) as session:
            doc = session.document
            assert doc is not None
            loop = asyncio.get_running_loop()
            ran = asyncio.Event()
            threads: list[int] = []

            def callback() -> None:
                threads.append(threading.get_ident())
                ran.set()

            worker = threading.Thread(target=lambda: doc.add_next_tick_callback(callback))
            worker.start()
            worker.join()
            # Idle until the callback runs; 20 s is a hang guard (the next
            # keep-alive would wake the loop only after 37 s).
            await asyncio.wait_for(ran.wait(), 20)
            assert threads == [threading.get_ident()]
            assert loop.is_running()

    asyncio.run(scenario())


def test_direct_change_from_a_worker_thread_is_refused_naming_next_tick(
    bokeh_server: BokehServer,
) -> None:
    with pull_session(url=bokeh_server.http_url("basic")) as session:
        doc = session.document
        assert doc is not None
        model = doc.select_one({"name": "echo"})
        attr = "text"
        errors: list[BaseException] = []

        def change() -> None:
            try:
                setattr(model, attr, "from a thread")
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        worker = threading.Thread(target=change)
        worker.start()
        worker.join()
        assert len(errors) == 1
        assert isinstance(errors[0], SessionStateError)
        assert "add_next_tick_callback" in str(errors[0])
        # The session still works; changes made on its home thread are sent.
        setattr(model, attr, "from home")
        session.force_roundtrip()
        with pull_session(session_id=session.id, url=bokeh_server.http_url("basic")) as obs:
            assert obs.document is not None
            assert getattr(obs.document.get_model_by_id(model.id), attr) == "from home"


# -- item 4: a recreated server session ----------------------------------------------

_APP_BEFORE = """
from bokeh.io import curdoc
from bokeh.models import Slider
curdoc().add_root(Slider(name="s", start=0, end=10, value=0))
"""

_APP_AFTER = """
from bokeh.io import curdoc
from bokeh.models import Div, Slider
curdoc().add_root(Div(name="note", text="a new version of the app"))
curdoc().add_root(Slider(name="s", start=0, end=10, value=0))
"""


def test_restarted_server_is_reported_and_stale_models_refuse_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bokeh_nb_client")
    app = tmp_path / "restarting.py"
    app.write_text(_APP_BEFORE)
    policy = Reconnect(initial_delay=0.05, max_delay=0.5, give_up_after=60)
    with (
        BokehServer.start([app]) as server,
        pull_session(url=server.http_url("restarting"), reconnect=policy) as session,
    ):
        assert session.document is not None
        slider = session.document.select_one({"name": "s"})
        slider.value = 5
        session.force_roundtrip()
        states: list[SessionState] = []
        back = threading.Event()

        def on_status(status: SessionStatus) -> None:
            states.append(status.state)
            if SessionState.RECONNECTING in states and status.state is SessionState.CONNECTED:
                back.set()

        session.subscribe(on_status)
        app.write_text(_APP_AFTER)
        server.restart()  # a new process: the app runs again, its state is reset
        # In a script the home thread applies the re-pull inside blocking calls
        # (as bokeh.client does), so keep making them until the reconnect is done.
        deadline = time.monotonic() + 60  # a hang guard
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            while not back.is_set():
                assert time.monotonic() < deadline, f"no reconnect; states {states}"
                with contextlib.suppress(ServerUnreachable):
                    session.force_roundtrip()
            session.force_roundtrip()
        recreated = [w for w in caught if issubclass(w.category, SessionRecreatedWarning)]
        assert len(recreated) == 1, [str(w.message) for w in caught]
        assert "NEW server session" in str(recreated[0].message)
        # Reported once, as the warning: a log line at WARNING would print it a
        # second time (stderr, in a notebook under the cell that made the session).
        logged = [r.levelno for r in caplog.records if "NEW server session" in r.getMessage()]
        assert logged == [logging.INFO], logged
        assert session.status.extra.get("session_recreated") is True
        fresh = session.document.select_one({"name": "s"})
        assert fresh.value == 0  # the server's reset state, not our 5
        assert session.document.select_one({"name": "note"}) is not None
        with pytest.raises(SessionStateError, match="no longer part"):
            slider.value = 7  # a held reference to a model that no longer exists
        fresh.value = 3  # the re-selected model syncs
        session.force_roundtrip()
        with pull_session(session_id=session.id, url=server.http_url("restarting")) as obs:
            assert obs.document is not None
            assert obs.document.select_one({"name": "s"}).value == 3


# -- item 7: close websockets at interpreter exit --------------------------------------

_EXIT_WITHOUT_CLOSE = """
import asyncio, sys
from bokeh_nb_client import pull_session_async
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
session = loop.run_until_complete(pull_session_async(url=sys.argv[1]))
print("pulled", flush=True)
# exit without session.close(), as a kernel that shuts down does
"""


def test_async_session_left_open_is_closed_at_interpreter_exit(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(apps=["basic"])
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_WITHOUT_CLOSE, server.http_url("basic")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pulled" in done.stdout
    # A close frame (bokeh logs code=None when the socket just drops).
    server.wait_for_log(r"WebSocket connection closed: code=1000")
