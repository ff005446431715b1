"""Scale-out: two ``bokeh serve`` processes behind nginx with per-session affinity.

nginx routes each websocket by a key taken from the Bokeh token in the
``Sec-WebSocket-Protocol`` header, the part that encodes the session id (see
``nginx_proxy.SESSION_AFFINITY`` for why that header and that part). Shown here,
with the async API on one loop:

* 20 sessions spread over both upstreams; the ``whoami`` app tells which process
  (name and pid) created each session, so a session is known to live on exactly
  one upstream;
* after one upstream is killed (SIGKILL), its sessions go RECONNECTING, then
  CONNECTED again by themselves (reconnect policy; nginx finds the dead upstream
  refusing, skips it, and the surviving one creates the sessions anew, which the
  client re-pulls), while every session on the surviving upstream stays CONNECTED
  throughout and never reconnects;
* afterwards every session works, and the survivor's app is the one answering.

The sync API does the same; its re-pull completes inside the next blocking call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from bokeh.models.widgets import Div, Slider
from bokeh_server import BokehServer

from bokeh_nb_client import (
    AsyncClientSession,
    ClientSession,
    SessionState,
    SessionStatus,
    pull_session,
    pull_session_async,
)
from bokeh_nb_client.reconnect import Reconnect

from .deploy_support import StartNginx, StartUpstream, StatusRecorder, named
from .nginx_proxy import Nginx, proxy_config

pytestmark = pytest.mark.interop

SESSIONS = 20
FAST = Reconnect(initial_delay=0.05, max_delay=0.5, give_up_after=30)
UPSTREAM_ARGS = ("--prefix", "bokeh", "--use-xheaders")


class AsyncStatusRecorder:
    """Every status snapshot of one async session; awaitable waits for a state.

    With the async API the session publishes on the running loop, so a plain
    ``asyncio.Event`` wakes the waiters.
    """

    def __init__(self, subscribe: Callable[[Callable[[SessionStatus], None]], object]) -> None:
        self.snapshots: list[SessionStatus] = []
        self._changed = asyncio.Event()
        subscribe(self._record)

    def _record(self, status: SessionStatus) -> None:
        self.snapshots.append(status)
        self._changed.set()

    @property
    def states(self) -> list[SessionState]:
        """The states seen, in order, with consecutive repeats collapsed."""
        states: list[SessionState] = []
        for status in self.snapshots:
            if not states or states[-1] is not status.state:
                states.append(status.state)
        return states

    async def wait_for(self, state: SessionState, after: int = 0, timeout: float = 20.0) -> int:
        """Wait until ``state`` is in :attr:`states` at index >= ``after``; return the index."""
        try:
            async with asyncio.timeout(timeout):
                while state not in self.states[after:]:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"state {state} not reached; saw {self.states}") from None
        return self.states.index(state, after)


def _facts(session: AsyncClientSession) -> dict[str, object]:
    facts: dict[str, object] = json.loads(named(session.document, "whoami", Div).text)
    return facts


async def _probe(session: AsyncClientSession, value: int) -> str:
    """Change the probe slider, round-trip, and return the server's echo."""
    named(session.document, "probe", Slider).value = value
    await session.force_roundtrip()
    return str(named(session.document, "echo", Div).text)


@pytest.fixture
def pool(
    start_upstream: StartUpstream, start_nginx: StartNginx
) -> tuple[Nginx, dict[str, BokehServer]]:
    """Upstreams "a" and "b" behind one nginx with session affinity."""
    upstreams = {
        name: start_upstream(
            apps=["whoami"], extra_args=UPSTREAM_ARGS, env={"DEPLOY_UPSTREAM": name}
        )
        for name in ("a", "b")
    }
    config = proxy_config(
        upstream_ports=[server.port for server in upstreams.values()],
        session_affinity=True,
        max_fails=1,
        fail_timeout=30,
    )
    return start_nginx(config, tls=False), upstreams


def test_sessions_spread_and_fail_over_when_an_upstream_dies(
    pool: tuple[Nginx, dict[str, BokehServer]],
) -> None:
    nginx, upstreams = pool
    url = nginx.url("/bokeh/whoami")

    async def scenario() -> None:
        sessions = await asyncio.gather(
            *(pull_session_async(url=url, reconnect=FAST) for _ in range(SESSIONS))
        )
        try:
            await _check_failover(sessions, upstreams, nginx)
        finally:
            await asyncio.gather(*(session.close() for session in sessions))

    asyncio.run(scenario())


async def _check_failover(
    sessions: list[AsyncClientSession], upstreams: dict[str, BokehServer], nginx: Nginx
) -> None:
    # 1. Both upstreams got sessions, and each session lives in exactly one process.
    home: dict[str, str] = {}
    for session in sessions:
        facts = _facts(session)
        name = str(facts["upstream"])
        assert facts["pid"] == upstreams[name].pid, "whoami names the process holding it"
        home[session.id] = name
    on_a = [s for s in sessions if home[s.id] == "a"]
    on_b = [s for s in sessions if home[s.id] == "b"]
    assert on_a and on_b, f"nginx did not spread the sessions: {sorted(home.values())}"
    # Affinity: every later request of a session reaches the same process, and so
    # does another connection to the session with a different token (another
    # expiry, as a reconnect would mint): the key is the session id, not the token.
    for value, session in enumerate(sessions, start=1):
        assert await _probe(session, value) == f"{home[session.id]}:{value}"
        async with await pull_session_async(
            session.id, url=session.app_url, token_expiration=12_345, reconnect=None
        ) as twin:
            assert twin.token.partition(".")[0] != session.token.partition(".")[0]
            assert _facts(twin) == _facts(session)

    # 2. Kill upstream "a"; watch every session's state from now on.
    recorders = {session.id: AsyncStatusRecorder(session.subscribe) for session in sessions}
    killed_at = time.monotonic()
    upstreams["a"].kill()
    for session in on_a:
        recorder = recorders[session.id]
        lost = await recorder.wait_for(SessionState.RECONNECTING)
        await recorder.wait_for(SessionState.CONNECTED, after=lost)
    print(
        f"\nscale-out: {len(on_a)} session(s) on a, {len(on_b)} on b; all of a's back "
        f"CONNECTED via b {time.monotonic() - killed_at:.2f} s after the kill"
    )

    # 3. Everyone works; the failed-over sessions were re-created on "b" and re-pulled.
    for value, session in enumerate(sessions, start=100):
        assert session.connected
        assert await _probe(session, value) == f"b:{value}"
    for session in on_a:
        assert _facts(session)["upstream"] == "b"
        assert recorders[session.id].states == [
            SessionState.RECONNECTING,
            SessionState.CONNECTED,
        ]
        assert session.status.extra.get("reconnects") == 1
    for session in on_b:
        recorder = recorders[session.id]
        assert recorder.snapshots, "no status was published: the check would be empty"
        seen = {status.state for status in recorder.snapshots}
        assert seen <= {SessionState.CONNECTED}, f"{session.id[:8]} left CONNECTED: {seen}"
        assert "reconnects" not in session.status.extra
        assert _facts(session)["upstream"] == "b"

    # nginx tried the dead upstream, was refused, and moved on (proxy_next_upstream).
    assert "Connection refused) while connecting to upstream" in nginx.error_log()


def _sync_facts(session: ClientSession) -> dict[str, object]:
    facts: dict[str, object] = json.loads(named(session.document, "whoami", Div).text)
    return facts


def test_sync_sessions_fail_over_inside_blocking_calls(
    pool: tuple[Nginx, dict[str, BokehServer]],
) -> None:
    """The same failover with the sync API in a plain test process.

    Here the Document is only touched on its home thread while a blocking call
    runs, so the re-pull that ends a reconnect completes inside the next blocking
    call (``force_roundtrip``), which waits for it.
    """
    nginx, upstreams = pool
    sessions: list[ClientSession] = []
    home: dict[str, str] = {}
    try:
        # Open sessions until each upstream holds at least two (bounded).
        while min(list(home.values()).count(name) for name in upstreams) < 2:
            assert len(sessions) < 40, f"nginx did not spread the sessions: {home}"
            session = pull_session(url=nginx.url("/bokeh/whoami"), reconnect=FAST)
            sessions.append(session)
            home[session.id] = str(_sync_facts(session)["upstream"])
        recorders = {session.id: StatusRecorder(session.subscribe) for session in sessions}
        upstreams["a"].kill()
        for value, session in enumerate(sessions, start=1):
            recorder = recorders[session.id]
            if home[session.id] == "a":
                recorder.wait_for(SessionState.RECONNECTING)
            session.force_roundtrip()  # waits for the reconnect and re-pull, if any
            named(session.document, "probe", Slider).value = value
            session.force_roundtrip()
            assert named(session.document, "echo", Div).text == f"b:{value}"
            assert _sync_facts(session)["upstream"] == "b"
            if home[session.id] == "a":
                assert recorder.states == [SessionState.RECONNECTING, SessionState.CONNECTED]
            else:
                assert recorder.snapshots, "no status was published: the check would be empty"
                assert {status.state for status in recorder.snapshots} == {SessionState.CONNECTED}
    finally:
        for session in sessions:
            session.close()
