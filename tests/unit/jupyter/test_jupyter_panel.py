"""The status panel and the server browser, without a kernel, a server or a socket.

ipywidgets works without a kernel (its comm is a ``DummyComm``), so the widgets'
state can be read directly. Loops are fakes with a hand-driven clock: the tests
decide when callbacks and timers run, so throttling is checked exactly.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import ipywidgets
import pytest

from bokeh_nb_client import StatusPanel
from bokeh_nb_client import discovery as browse
from bokeh_nb_client.discovery import AuthenticationRequired, DiscoveryError, NotABokehServer
from bokeh_nb_client.exceptions import ConnectError, RemoteProtocolError, Timeout
from bokeh_nb_client.jupyter.panel import SessionRowView, StatusThrottle, redact
from bokeh_nb_client.session import AsyncClientSession
from bokeh_nb_client.status import SessionState, SessionStatus

SESSION_ID = "AbCdEfGh1234567890abcdefghijklmnopqrstuvwxyz"
WS_URL = "ws://127.0.0.1:5006/basic/ws"


# -- a loop driven by hand -------------------------------------------------------------


class FakeHandle:
    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTask:
    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro

    def add_done_callback(self, callback: Callable[..., object]) -> None:
        pass

    def done(self) -> bool:
        return False

    def cancel(self) -> None:
        pass


class FakeLoop:
    """What the panel and its throttle use of a loop; time moves only with ``advance``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.ready: collections.deque[tuple[Callable[..., object], tuple[Any, ...]]] = (
            collections.deque()
        )
        self.timers: list[FakeHandle] = []
        self.tasks: list[FakeTask] = []
        self.soon_calls = 0
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def is_closed(self) -> bool:
        return False

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        with self._lock:
            self.soon_calls += 1
            self.ready.append((callback, args))

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> FakeHandle:
        handle = FakeHandle(when, callback, args)
        self.timers.append(handle)
        return handle

    def create_task(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> FakeTask:
        task = FakeTask(coro)
        self.tasks.append(task)
        return task

    def run(self) -> None:
        """Run ready callbacks and due timers until nothing is left to run now."""
        while True:
            with self._lock:
                ready = list(self.ready)
                self.ready.clear()
            due = [h for h in self.timers if not h.cancelled and h.when <= self.now]
            self.timers = [h for h in self.timers if h not in due and not h.cancelled]
            if not ready and not due:
                return
            for callback, args in ready:
                callback(*args)
            for handle in sorted(due, key=lambda h: h.when):
                handle.callback(*handle.args)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.run()

    def close(self) -> None:
        for task in self.tasks:
            task.coro.close()


@pytest.fixture
def loop() -> Iterator[FakeLoop]:
    fake = FakeLoop()
    yield fake
    fake.close()


@pytest.fixture
def make_session() -> Iterator[Callable[..., AsyncClientSession]]:
    """Unconnected AsyncClientSessions (no I/O), closed after the test."""
    made: list[AsyncClientSession] = []

    def make(**options: Any) -> AsyncClientSession:
        options.setdefault("reconnect", None)
        session = AsyncClientSession(
            options.pop("session_id", SESSION_ID), options.pop("url", WS_URL), **options
        )
        made.append(session)
        return session

    yield make
    for session in made:
        asyncio.run(session.close())


def snapshot(**changes: Any) -> SessionStatus:
    base = SessionStatus(
        url=WS_URL,
        session_id=SESSION_ID,
        state=SessionState.CONNECTED,
        server_version="3.9.2",
        roots=5,
        models=12,
        messages_in=14,
        messages_out=3,
        bytes_in=2100,
        bytes_out=950,
        last_rtt=0.0013,
        last_activity=1_700_000_000.0,
    )
    return base.with_changes(**changes)


def all_state(root: ipywidgets.Widget) -> str:
    """The synced state of ``root`` and of every widget it refers to, as one string.

    Children are found through the synced traits themselves, not ipywidgets'
    instance registry (``_instances`` from 8.0.3, ``Widget.widgets`` before).
    """
    seen: set[str] = set()
    states: list[dict[str, Any]] = []
    todo = [root]
    while todo:
        widget = todo.pop()
        if widget.model_id in seen:
            continue
        seen.add(widget.model_id)
        states.append(widget.get_state())
        for name in widget.keys:
            value = getattr(widget, name)
            children = value if isinstance(value, list | tuple) else [value]
            todo.extend(child for child in children if isinstance(child, ipywidgets.Widget))
    return json.dumps(states, default=str)


# -- rendering ---------------------------------------------------------------------------


def test_a_row_renders_every_field_of_a_snapshot() -> None:
    row = SessionRowView(snapshot(extra={"reconnects": 2}), names=("session",))
    title = row.title.value
    assert "<b>session</b>" in title
    assert "http://127.0.0.1:5006" in title
    assert "/basic" in title
    assert ">AbCdEfGh…</code>" in title  # the short id, the full one on hover:
    assert f'title="{SESSION_ID}"' in title
    assert 'data-state="connected"' in title
    stats = row.stats.value
    for part in (
        "bokeh 3.9.2",
        "5 roots, 12 models",
        "in 14 msgs (2.1 kB)",
        "out 3 msgs (950 B)",
        "rtt 1.3 ms",
        "last activity ",
        "reconnected 2 times",
    ):
        assert part in stats


def test_error_states_carry_their_reason_and_last_errors_show() -> None:
    row = SessionRowView(
        snapshot(state=SessionState.ERROR, last_error="gave up reconnecting: refused")
    )
    assert 'data-state="error"' in row.title.value
    assert "error: gave up reconnecting: refused" in row.title.value
    row.render(
        snapshot(
            state=SessionState.RECONNECTING,
            extra={"reconnect_attempt": 3},
            last_error="reconnect attempt 2 failed: refused",
        )
    )
    assert "reconnecting (attempt 3)" in row.title.value
    assert "last error: reconnect attempt 2 failed: refused" in row.children[2].value


def test_panel_render_updates_the_row_of_the_snapshots_session() -> None:
    panel = StatusPanel(include_kernel_sessions=False)
    assert "no open Bokeh sessions" in panel.children[0].children[0].value
    panel.render(snapshot())
    panel.render(snapshot(state=SessionState.DISCONNECTED, last_error="closed 1001"))
    assert len(panel.rows) == 1
    row = panel.rows[0]
    assert 'data-state="disconnected"' in row.title.value
    assert all(button.disabled for button in row.buttons.values())  # render-only row
    panel.render(snapshot(session_id="other-session"))
    assert len(panel.rows) == 2
    panel.close()


def test_a_static_panel_says_so_and_offers_no_actions(
    make_session: Callable[..., AsyncClientSession],
) -> None:
    panel = StatusPanel(include_kernel_sessions=False)  # no running loop here
    row = panel.track(make_session())
    assert "static" in panel.children[0].children[0].value
    assert all(button.disabled for button in row.buttons.values())
    panel.close()


def test_buttons_follow_the_state_and_running_actions(
    loop: FakeLoop, make_session: Callable[..., AsyncClientSession]
) -> None:
    clicked: list[tuple[SessionRowView, str]] = []
    session = make_session()
    row = SessionRowView(
        snapshot(), session=session, kind="async", on_action=lambda r, a: clicked.append((r, a))
    )
    enabled = {action for action, button in row.buttons.items() if not button.disabled}
    assert enabled == {"pull", "show", "close"}  # push: no document yet
    row.buttons["pull"].click()
    assert clicked == [(row, "pull")]
    row.set_running("pull", True)
    assert row.buttons["pull"].disabled
    assert row.buttons["pull"].description == "Pulling…"
    assert not row.buttons["close"].disabled  # close stays possible
    row.set_running("pull", False)
    row.render(snapshot(state=SessionState.ERROR, last_error="boom"))
    enabled = {action for action, button in row.buttons.items() if not button.disabled}
    assert enabled == {"close", "reconnect"}
    row.render(snapshot(state=SessionState.CLOSED))
    assert all(button.disabled for button in row.buttons.values())
    unknown = SessionRowView(snapshot(), session=session, kind="-", on_action=lambda r, a: None)
    assert all(button.disabled for button in unknown.buttons.values())
    assert "bind it to a variable" in unknown.buttons["pull"].tooltip


def test_a_row_displays_with_a_text_summary(
    make_session: Callable[..., AsyncClientSession],
) -> None:
    row = SessionRowView(snapshot(), session=make_session(), names=("session",), kind="async")
    bundle = row._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Bokeh session 'session'")
    assert "bnc-status" in bundle["text/html"]


# -- live updates and throttling ------------------------------------------------------------


def test_the_throttle_coalesces_a_burst_into_one_update(loop: FakeLoop) -> None:
    applied: list[dict[str, int]] = []
    throttle: StatusThrottle[str, int] = StatusThrottle(loop, applied.append, interval=0.1)

    def burst(start: int) -> None:
        for value in range(start, start + 100):
            throttle.post("a", value)
            throttle.post("b", -value)

    worker = threading.Thread(target=burst, args=(0,))
    worker.start()
    worker.join()
    assert loop.soon_calls == 1  # one hop to the loop for the whole burst
    assert applied == []  # nothing is applied off the loop
    loop.run()
    assert applied == [{"a": 99, "b": -99}]  # the first update is immediate

    loop.advance(0.02)
    burst(100)
    loop.run()
    assert len(applied) == 1  # within 0.1 s of the last update: wait
    loop.advance(0.05)
    assert len(applied) == 1
    loop.advance(0.031)  # 0.1 s after the last update
    assert applied[-1] == {"a": 199, "b": -199}
    assert len(applied) == 2

    throttle.post("a", 1)
    throttle.flush()  # applied now, not at the next tick
    assert applied[-1] == {"a": 1}
    throttle.close()
    throttle.post("a", 2)
    loop.advance(1.0)
    assert applied[-1] == {"a": 1}


def test_the_panel_follows_its_sessions_through_the_throttle(
    loop: FakeLoop, make_session: Callable[..., AsyncClientSession]
) -> None:
    session = make_session()
    panel = StatusPanel(loop=loop, include_kernel_sessions=False)  # type: ignore[arg-type]
    row = panel.track(session, "session")
    loop.run()
    updates: list[str] = []
    row.stats.observe(lambda change: updates.append(change["new"]), names="value")

    def publish_burst() -> None:
        for count in range(1, 201):
            session._status.publish(  # what the session's I/O thread does on traffic
                state=SessionState.CONNECTED, messages_in=count, server_version="3.9.2"
            )

    worker = threading.Thread(target=publish_burst)
    worker.start()
    worker.join()
    assert updates == []  # widgets are not touched on the publishing thread
    loop.advance(0.1)
    assert len(updates) == 1
    assert "in 200 msgs" in updates[0]
    assert 'data-state="connected"' in row.title.value
    panel.close()
    session._status.publish(messages_in=999)
    loop.advance(1.0)
    assert len(updates) == 1  # a closed panel no longer follows


# -- secrets ---------------------------------------------------------------------------------


def test_tokens_and_secrets_never_reach_widget_state(
    loop: FakeLoop,
    make_session: Callable[..., AsyncClientSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "panel-test-secret-key-0123456789abcdef"
    monkeypatch.setenv("BOKEH_SECRET_KEY", key)
    session = make_session(
        session_id=None,
        url="ws://alice:hunter2@127.0.0.1:5006/basic/ws",
        secret_key=key,
        sign_sessions=True,
    )
    token = session.token
    assert token.startswith("eyJ")
    panel = StatusPanel(loop=loop, include_kernel_sessions=False)  # type: ignore[arg-type]
    row = panel.track(session, "signed")
    leak = f"rejected token {token} signed with {key} at ws://alice:hunter2@127.0.0.1:5006/"
    session._status.publish(state=SessionState.ERROR, last_error=leak)
    loop.advance(0.2)
    row.say(f"pull failed: {leak}", error=True)
    panel.url_text.value = "http://bob:pa55word@127.0.0.1:5006/"
    panel.browse()  # normalises the URL (dropping the credentials) before listing
    panel._browser.say(f"could not open: {leak}", error=True)

    state = all_state(panel)
    assert "&lt;token&gt;" in state and "***" in state  # the texts are there, scrubbed
    for secret in (token, token.split(".")[0], key, "hunter2", "pa55word"):
        assert secret not in state
    fallback = json.dumps(row._repr_mimebundle_()) + json.dumps(panel._repr_mimebundle_())
    for secret in (token, key, "hunter2"):
        assert secret not in fallback
    panel.close()


def test_redact_scrubs_credentials_tokens_and_given_secrets() -> None:
    assert redact("ws://u:p@h:1/ws and https://x@h/") == "ws://***@h:1/ws and https://***@h/"
    assert redact("token eyJzZXNzaW9uX2lkIjogIm.sig-nature_1 here") == "token <token> here"
    assert redact("key abcdef in text", ["abcdef"]) == "key *** in text"


# -- browsing ------------------------------------------------------------------------------------

INDEX = """<html><body>
<a href="//bokeh.org">Bokeh</a><a href="https://docs.bokeh.org/en/latest">Docs</a>
<div class="list-group"><h4><a href="/pre/basic">basic</a></h4>
<h4><a href="/pre/ticker">ticker</a></h4><h4><a href="/pre/basic">again</a></h4>
<a href="/pre/static/x.js">static</a><a href="/other/app">elsewhere</a></div></body></html>"""


class FakeHttp:
    """Answers GETs from a table; anything else is a 404."""

    def __init__(self, answers: dict[str, browse.HttpResponse | Exception]) -> None:
        self.answers = answers
        self.requested: list[str] = []

    def __call__(self, url: str, timeout: float) -> browse.HttpResponse:
        self.requested.append(url)
        answer = self.answers.get(url, browse.HttpResponse(url, 404, "text/html"))
        if isinstance(answer, Exception):
            raise answer
        return answer


def metadata(url: str, app: str, data: dict[str, Any] | None = None) -> browse.HttpResponse:
    body = json.dumps({"url": app, "data": data or {}}).encode()
    return browse.HttpResponse(url, 200, "application/json", body=body)


def test_an_index_page_lists_the_apps_that_answer_metadata() -> None:
    base = "http://127.0.0.1:5006/pre"
    fetch = FakeHttp(
        {
            base + "/": browse.HttpResponse(base + "/", 200, "text/html", body=INDEX.encode()),
            base + "/basic/metadata": metadata(base + "/basic/metadata", "/basic", {"a": 1}),
            base + "/ticker/metadata": metadata(base + "/ticker/metadata", "/ticker"),
        }
    )
    listing = browse.list_apps("127.0.0.1:5006/pre/", fetch=fetch)
    assert listing.url == base
    assert [(app.name, app.url) for app in listing.apps] == [
        ("basic", base + "/basic"),
        ("ticker", base + "/ticker"),
    ]
    assert listing.apps[0].metadata == {"a": 1}
    assert listing.note == "index page"
    assert fetch.requested[0] == base + "/metadata"  # is the URL itself an app?


def test_an_app_url_and_a_single_app_redirect_are_understood() -> None:
    app = "http://h:5006/basic"
    listing = browse.list_apps(app, fetch=FakeHttp({app + "/metadata": metadata("", "/basic")}))
    assert [a.name for a in listing.apps] == ["basic"]
    assert listing.note == "the URL is an app"

    root = "http://h:5006"
    redirect = browse.HttpResponse(root + "/", 302, location="/basic")
    fetch = FakeHttp({root + "/": redirect, app + "/metadata": metadata("", "/basic")})
    listing = browse.list_apps(root, fetch=fetch)
    assert [a.url for a in listing.apps] == [app]
    assert fetch.requested[-1] == app + "/metadata"  # the app page itself is never fetched


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"http://h/": browse.HttpResponse("", 404, "text/html")}, "answered HTTP 404"),
        ({"http://h/": browse.HttpResponse("", 200, "application/json")}, "instead of an index"),
        (
            {"http://h/": browse.HttpResponse("", 200, "text/html", body=b"<a href='/x'>x</a>")},
            "links to no app",
        ),
        ({"http://h/": browse.HttpResponse("", 401, "text/html")}, "requires authentication"),
        ({"http://h/": browse.HttpResponse("", 302, location="/login")}, "a login page?"),
    ],
)
def test_non_bokeh_answers_are_explained(
    answers: dict[str, browse.HttpResponse], message: str
) -> None:
    with pytest.raises(DiscoveryError, match=r"(?s).*" + message) as raised:
        browse.list_apps("http://h", fetch=FakeHttp(dict(answers)))
    # Its own errors, not a protocol error; 401/403 and login pages say so.
    assert not isinstance(raised.value, RemoteProtocolError)
    wants_login = "authentication" in message or "login" in message
    expected = AuthenticationRequired if wants_login else NotABokehServer
    assert isinstance(raised.value, expected)


def test_unreachable_servers_and_bad_urls_raise_clear_errors() -> None:
    refused = ConnectError("cannot reach http://h:1: connection refused", url="http://h:1")
    with pytest.raises(ConnectError, match="connection refused"):
        browse.list_apps("http://h:1", fetch=FakeHttp({"http://h:1/metadata": refused}))
    slow = Timeout("GET http://h:1/metadata", 5.0)
    with pytest.raises(Timeout):
        browse.list_apps("http://h:1", fetch=FakeHttp({"http://h:1/metadata": slow}))
    for bad, why in [
        ("", "enter the URL"),
        ("ftp://h/", "cannot be browsed"),
        ("http://:5/", "no host"),
        ("http://h:99999/", "invalid port"),
    ]:
        with pytest.raises(ValueError, match=why):
            browse.list_apps(bad, fetch=FakeHttp({}))


def test_urls_are_normalised_without_credentials() -> None:
    assert browse.normalize_server_url("localhost:5006/") == "http://localhost:5006"
    assert browse.normalize_server_url("ws://h:1/app/ws") == "http://h:1/app"
    assert browse.normalize_server_url("https://u:p@h/x/?q=1#f") == "https://h/x"


def test_app_links_keep_only_this_servers_apps() -> None:
    links = browse.app_links(INDEX, "http://h/pre")
    assert links == ["http://h/pre/basic", "http://h/pre/ticker"]


def test_a_browse_failure_shows_in_the_panel(loop: FakeLoop) -> None:
    panel = StatusPanel(loop=loop, include_kernel_sessions=False)  # type: ignore[arg-type]
    panel.browse("gopher://h/")
    assert 'data-kind="error"' in panel.browse_message.value
    assert "cannot be browsed" in panel.browse_message.value
    panel.close()
