"""Reconnect policies against real faults: restart, kill, freeze, network cut, expiry.

Issue #6, "Reconnect" and "Faults to survive".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh_server import BokehServer, StartBokehServer
from relay import TcpRelay
from testapps import FAST_SESSION_ARGS
from waiting import poll_until

from bokeh_nb_client import ClientSession, SessionState, SessionStatus, pull_session, push_session
from bokeh_nb_client.exceptions import (
    ChangesDiscardedWarning,
    ConnectError,
    ConnectionClosedError,
    Timeout,
)
from bokeh_nb_client.reconnect import Reconnect

pytestmark = pytest.mark.interop

# These tests are about what a reconnect delivers, so a request made meanwhile may
# wait for as long as the reconnect may take (a restart of an older bokeh on a
# loaded machine takes several seconds); the short default grace has its own tests.
FAST = Reconnect(initial_delay=0.05, max_delay=0.5, give_up_after=20, request_grace=20)


class StateWatch:
    """Records every state a session passes through; waits for one to appear."""

    def __init__(self, session: ClientSession) -> None:
        self.states: list[SessionState] = []
        self._changed = threading.Condition()
        self._unsubscribe = session.subscribe(self._on_status)

    def _on_status(self, status: SessionStatus) -> None:
        with self._changed:
            if not self.states or self.states[-1] is not status.state:
                self.states.append(status.state)
            self._changed.notify_all()

    def wait_for(self, state: SessionState, after: int = 0, timeout: float = 20.0) -> int:
        """Wait until ``state`` appears at an index >= ``after``; return that index."""
        with self._changed:
            found = self._changed.wait_for(lambda: state in self.states[after:], timeout)
        assert found, f"state {state} not reached; saw {self.states}"
        return self.states.index(state, after)


def _through_relay(server: BokehServer, relay: TcpRelay, app: str) -> str:
    return server.http_url(app).replace(f":{server.port}/", f":{relay.port}/")


@pytest.fixture
def relayed(start_bokeh_server: StartBokehServer) -> Iterator[tuple[BokehServer, TcpRelay]]:
    server = start_bokeh_server(
        apps=["basic", "sink"], extra_args=(*FAST_SESSION_ARGS, "--log-level", "debug")
    )
    with TcpRelay(server.port) as relay:
        yield server, relay


def test_restart_mid_stream_pull_policy_reports_discarded_changes(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(apps=["sink"])
    session = pull_session(url=server.http_url("sink"), reconnect=FAST)
    watch = StateWatch(session)
    doc = session.document
    assert doc is not None
    sink = doc.select_one({"name": "sink"})
    old_ids = {root.id for root in doc.roots}
    server.kill()
    lost_at = watch.wait_for(SessionState.RECONNECTING)
    for i in range(5):  # made while disconnected: the pull policy must report them
        sink.stream({"x": [i], "y": [i]})
    server.restart()
    # The re-pull and its warning happen on the home thread, inside a blocking call.
    with pytest.warns(ChangesDiscardedWarning, match="ColumnsStreamed"):
        session.force_roundtrip()  # waits for the reconnect, then round-trips
    watch.wait_for(SessionState.CONNECTED, after=lost_at)
    assert session.connected
    assert any("ColumnsStreamed" in item for item in session.discarded_changes)
    # Models are named as the user knows them (type and name), not by id alone.
    assert any("ColumnDataSource 'sink'" in item for item in session.discarded_changes)
    # A restarted server runs the app again; with a fresh process its id counter
    # repeats the same ids, so the document looks the same: the server's state won.
    assert {root.id for root in doc.roots} == old_ids
    assert list(doc.select_one({"name": "sink"}).data["x"]) == []  # the server's state won
    session.close()


def test_restart_push_policy_restores_the_document_with_offline_changes(
    start_bokeh_server: StartBokehServer,
) -> None:
    server = start_bokeh_server(apps=["empty"])
    doc = Document()
    source = ColumnDataSource(name="rows", data={"x": [0], "y": [0]})
    doc.add_root(source)
    session = push_session(doc, url=server.http_url("empty"), reconnect=FAST)
    watch = StateWatch(session)
    server.kill()
    lost_at = watch.wait_for(SessionState.RECONNECTING)
    for i in range(1, 50):
        source.stream({"x": [i], "y": [i]})
    server.restart()
    session.force_roundtrip()
    watch.wait_for(SessionState.CONNECTED, after=lost_at)
    assert session.discarded_changes == []
    with pull_session(session_id=session.id, url=server.http_url("empty")) as observer:
        assert observer.document is not None
        assert list(observer.document.select_one({"name": "rows"}).data["x"]) == list(range(50))
    session.close()


def test_network_cut_and_restored(relayed: tuple[BokehServer, TcpRelay]) -> None:
    server, relay = relayed
    session = pull_session(url=_through_relay(server, relay, "basic"), reconnect=FAST)
    watch = StateWatch(session)
    doc = session.document
    assert doc is not None
    relay.cut()
    lost_at = watch.wait_for(SessionState.RECONNECTING)
    relay.restore()
    # In a script the document is only touched inside blocking calls, so the
    # re-pull completes inside this one (in a kernel it completes by itself).
    session.force_roundtrip()
    watch.wait_for(SessionState.CONNECTED, after=lost_at)
    doc.select_one({"name": "slider"}).value = 3
    session.force_roundtrip()
    assert doc.select_one({"name": "echo"}).text == "slider=3"
    session.close()


def test_request_during_outage_waits_for_the_reconnect(
    relayed: tuple[BokehServer, TcpRelay],
) -> None:
    server, relay = relayed
    session = pull_session(url=_through_relay(server, relay, "basic"), reconnect=FAST)
    watch = StateWatch(session)
    relay.cut()
    watch.wait_for(SessionState.RECONNECTING)
    timer = threading.Timer(0.5, relay.restore)
    timer.start()
    started = time.monotonic()
    session.force_roundtrip()  # issued while disconnected; completes after the restore
    assert time.monotonic() - started >= 0.3
    assert session.connected
    timer.join()
    session.close()


def test_blackholed_network_times_out_then_recovers(
    relayed: tuple[BokehServer, TcpRelay],
) -> None:
    server, relay = relayed
    # The first session of a fresh server loads the app before its ACK, which can
    # take over the 1 s allowed below on a loaded machine (seen on bokeh 3.4).
    with pull_session(url=server.http_url("basic")):
        pass
    session = pull_session(url=_through_relay(server, relay, "basic"), reconnect=FAST, timeout=1)
    watch = StateWatch(session)
    relay.blackhole()
    started = time.monotonic()
    with pytest.raises(Timeout):
        session.force_roundtrip()
    assert time.monotonic() - started < 3
    relay.restore()  # resets the connection that lost bytes; the session reconnects
    lost_at = watch.wait_for(SessionState.RECONNECTING)
    session.force_roundtrip()
    watch.wait_for(SessionState.CONNECTED, after=lost_at)
    session.close()


def test_session_expired_while_disconnected(relayed: tuple[BokehServer, TcpRelay]) -> None:
    """The server discards the session 2-3 s after its last connection left."""
    server, relay = relayed
    session = pull_session(url=_through_relay(server, relay, "basic"), reconnect=FAST)
    watch = StateWatch(session)
    doc = session.document
    assert doc is not None
    doc.select_one({"name": "div"}).text = "client text"
    session.force_roundtrip()
    old_ids = {root.id for root in doc.roots}
    relay.cut()
    watch.wait_for(SessionState.RECONNECTING)
    server.wait_for_log(rf"Discarding session '{session.id}'", timeout=15)
    relay.restore()
    poll_until(session, lambda: session.connected, timeout=20)
    assert old_ids.isdisjoint({root.id for root in doc.roots})  # new ids: detected
    assert session.status.extra.get("session_recreated") is True
    assert doc.select_one({"name": "div"}).text == "hello"  # the app ran again
    session.close()


def test_token_expired_before_reconnect_gets_a_fresh_token(
    start_bokeh_server: StartBokehServer,
) -> None:
    secret = "k" * 44
    server = start_bokeh_server(
        apps=["basic"], extra_args=("--session-ids", "signed"), env={"BOKEH_SECRET_KEY": secret}
    )
    with TcpRelay(server.port) as relay:
        session = pull_session(
            url=_through_relay(server, relay, "basic"),
            secret_key=secret,
            # bokeh counts the expiry in whole seconds from the minting, so a token of
            # N s is valid for N-1 to N s: 4 leaves the first connect 3 s on a busy machine.
            token_expiration=4,
            reconnect=FAST,
        )
        watch = StateWatch(session)
        relay.cut()
        lost_at = watch.wait_for(SessionState.RECONNECTING)
        threading.Event().wait(4.1)  # outlive the 4 s token: the point of this test
        relay.restore()
        session.force_roundtrip()
        watch.wait_for(SessionState.CONNECTED, after=lost_at)
        session.close()


def test_no_reconnect_fails_fast_and_ends(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"])
    session = pull_session(url=server.http_url("basic"), reconnect=None)
    watch = StateWatch(session)
    server.kill()
    watch.wait_for(SessionState.ERROR)
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError):
        session.force_roundtrip()
    session.loop_until_closed()  # returns: the session has ended
    assert time.monotonic() - started < 2
    session.close()


def test_reconnect_gives_up(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"])
    session = pull_session(
        url=server.http_url("basic"),
        reconnect=Reconnect(initial_delay=0.05, max_delay=0.2, give_up_after=1.0),
    )
    watch = StateWatch(session)
    server.kill()
    watch.wait_for(SessionState.ERROR, timeout=10)
    session.loop_until_closed()
    assert "gave up" in (session.status.last_error or "")
    with pytest.raises(ConnectError):  # the last attempt's error: refused
        session.force_roundtrip()
    session.close()


def test_reconnect_argument_is_validated() -> None:
    with pytest.raises(ValueError, match="mode"):
        ClientSession(reconnect="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reconnect"):
        ClientSession(reconnect=3)  # type: ignore[arg-type]


def test_explicit_reconnect_after_the_session_ended(start_bokeh_server: StartBokehServer) -> None:
    server = start_bokeh_server(apps=["basic"])
    session = pull_session(url=server.http_url("basic"), reconnect=None)
    watch = StateWatch(session)
    server.kill()
    ended_at = watch.wait_for(SessionState.ERROR)
    with pytest.raises(ConnectError):
        session.reconnect()  # still down: a typed error, and the session stays ended
    server.restart()
    session.reconnect()
    watch.wait_for(SessionState.CONNECTED, after=ended_at)
    doc = session.document
    assert doc is not None
    doc.select_one({"name": "slider"}).value = 4
    session.force_roundtrip()
    assert doc.select_one({"name": "echo"}).text == "slider=4"
    session.close()
