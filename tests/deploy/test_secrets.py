"""Secrets never leak: the secret key, the tokens, and auth cookie/header values.

The server runs with ``--session-ids signed`` (``BOKEH_SECRET_KEY``) and the
``auth_cookie`` auth module (a ``user`` cookie or an ``X-User`` header logs in). The
client is given a secret key, a cookie and a header, all random and distinctive.
Every token the client sends is recorded at the transport boundary (the sessions
open their websocket through ``Secrets.open``, a ``transport_factory`` that notes
the token and opens the real ``AiohttpTransport``), so the checks look for the
exact tokens that went over the wire, and also for their two halves (payload and
signature).

Places searched: ``repr``/``str`` of the session (sync and async), every status
snapshot the session published (its ``repr`` and each field), every log record
captured at DEBUG (the ``bokeh_nb_client`` tree and everything else, message and
rendered traceback), every warning, and, in the failure cases (wrong key, auth
refused, wrong app path, server down), ``str``/``repr`` of the raised exception,
its rendered traceback, and every exception chained to it.
"""

from __future__ import annotations

import logging
import secrets
import warnings
from typing import Any

import pytest
from bokeh.models.widgets import Div, Slider
from bokeh_server import BokehServer, find_free_port

from bokeh_nb_client import ClientSession, SessionState, pull_session
from bokeh_nb_client.exceptions import (
    BokehClientError,
    ChangesDiscardedWarning,
    ConnectError,
    HandshakeRejected,
)
from bokeh_nb_client.protocol import urls
from bokeh_nb_client.reconnect import Reconnect
from bokeh_nb_client.transport.base import Transport
from bokeh_nb_client.transport.websocket import AiohttpTransport

from .deploy_support import AUTH_MODULE, StartUpstream, StatusRecorder, named
from .leak_check import LeakReport

pytestmark = pytest.mark.interop

FAST = Reconnect(initial_delay=0.05, max_delay=0.3, give_up_after=30)


class Secrets:
    """The secret values of one test, and every token minted with them."""

    def __init__(self) -> None:
        self.server_key = secrets.token_urlsafe(33)  # 44 characters, as bokeh wants
        self.cookie = "cookie-" + secrets.token_urlsafe(18)
        self.header = "header-" + secrets.token_urlsafe(18)
        self.other: dict[str, str] = {}
        self.tokens: list[str] = []

    async def open(self, url: str, **kwargs: Any) -> Transport:
        """A ``transport_factory``: note the token, then open the real websocket."""
        self.tokens.append(kwargs["token"])
        return await AiohttpTransport.open(url, **kwargs)

    def needles(self) -> dict[str, str]:
        """Name -> secret text, for every value that must never be shown."""
        found = {
            "secret key": self.server_key,
            "cookie value": self.cookie,
            "header value": self.header,
            **self.other,
        }
        for index, token in enumerate(self.tokens):
            payload, _, signature = token.partition(".")
            found[f"token #{index}"] = token
            found[f"token #{index} payload"] = payload
            if signature:
                found[f"token #{index} signature"] = signature
        return found


def test_leak_report_finds_planted_secrets() -> None:
    """Positive control: the detector sees each kind of secret, whole or in part."""
    values = Secrets()
    values.tokens.append("payloadpart.signaturepart")
    report = LeakReport(values.needles)
    report.check("clean", "nothing to see")
    assert report.findings == []
    for planted in (values.server_key, values.cookie, values.header, "x signaturepart y"):
        report.check("planted", f"<{planted!r}>")
    assert len(report.findings) == 4
    with pytest.raises(AssertionError, match="secret key in planted"):
        report.assert_clean()


@pytest.fixture
def secret_values(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    """Fresh secrets; sessions given ``transport_factory=values.open`` record their tokens."""
    values = Secrets()
    monkeypatch.delenv("BOKEH_SECRET_KEY", raising=False)
    monkeypatch.delenv("BOKEH_SIGN_SESSIONS", raising=False)
    return values


@pytest.fixture
def signed_auth_server(start_upstream: StartUpstream, secret_values: Secrets) -> BokehServer:
    """``bokeh serve`` with signed session ids and the cookie/header auth module."""
    return start_upstream(
        apps=["basic"],
        extra_args=("--session-ids", "signed", "--auth-module", str(AUTH_MODULE)),
        env={"BOKEH_SECRET_KEY": secret_values.server_key},
    )


def test_full_session_cycle_leaks_nothing(
    signed_auth_server: BokehServer, secret_values: Secrets, caplog: pytest.LogCaptureFixture
) -> None:
    """Pull, change, lose the server, reconnect (with an offline change), change, close."""
    server = signed_auth_server
    report = LeakReport(secret_values.needles)
    caplog.set_level(logging.DEBUG)  # root: the bokeh_nb_client tree and everything else
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = pull_session(
            url=server.http_url("basic"),
            secret_key=secret_values.server_key,
            cookies={"user": secret_values.cookie},
            headers={"X-User": secret_values.header},
            reconnect=FAST,
            transport_factory=secret_values.open,
        )
        recorder = StatusRecorder(session.subscribe)
        report.check_session("session after pull", session)
        secret_values.tokens.append(session.token)  # the public property mints one too
        slider = named(session.document, "slider", Slider)
        slider.value = 11
        session.force_roundtrip()
        assert named(session.document, "echo", Div).text == "slider=11"  # auth and signing work

        server.kill()
        lost = recorder.wait_for(SessionState.RECONNECTING)
        report.check_session("session while reconnecting", session)
        slider.value = 12  # made offline: the re-pull discards it and warns
        server.restart()
        session.force_roundtrip()  # waits for the reconnect; the re-pull runs in here
        recorder.wait_for(SessionState.CONNECTED, after=lost)
        # The re-pull replaced the document's models: look the slider up again.
        named(session.document, "slider", Slider).value = 13
        session.force_roundtrip()
        assert named(session.document, "echo", Div).text == "slider=13"
        report.check_session("session after reconnect", session)
        session.close()
        report.check_session("closed session", session)

    assert len(secret_values.tokens) >= 3  # first connect, >= 1 reconnect, the property
    assert any(issubclass(item.category, ChangesDiscardedWarning) for item in caught)
    assert any(r.name.startswith("bokeh_nb_client") for r in caplog.records), "no package logs"
    for index, status in enumerate(recorder.snapshots):
        report.check_status(f"status snapshot #{index} ({status.state.value})", status)
    report.check_logs(caplog.records)
    report.check_warnings(caught)
    report.assert_clean()


# Each case: (websocket URL builder, client options) that makes the first connect fail.
FAILURES = ["wrong secret key", "auth refused", "wrong app path", "server down"]


def _failing_attempt(
    case: str, server: BokehServer, values: Secrets
) -> tuple[str, dict[str, Any], type[BokehClientError]]:
    url = server.http_url("basic")
    options: dict[str, Any] = {
        "secret_key": values.server_key,
        "cookies": {"user": values.cookie},
        "headers": {"X-User": values.header},
        "reconnect": None,
        "transport_factory": values.open,
    }
    expected: type[BokehClientError] = HandshakeRejected
    if case == "wrong secret key":
        values.other["client's wrong key"] = options["secret_key"] = secrets.token_urlsafe(33)
    elif case == "auth refused":
        # Sent, but not what the auth module looks for: refused, yet still secret.
        options["cookies"] = {"session": values.cookie}
        options["headers"] = {"Authorization": f"Bearer {values.header}"}
    elif case == "wrong app path":
        url = server.http_url("no_such_app")
    elif case == "server down":
        url = f"http://127.0.0.1:{find_free_port()}/basic"
        expected = ConnectError
    return url, options, expected


def _fail(
    case: str, server: BokehServer, values: Secrets
) -> tuple[BokehClientError, ClientSession]:
    """Make the case's connect fail twice: through ``pull_session`` and a kept session."""
    url, options, expected = _failing_attempt(case, server, values)
    with pytest.raises(expected) as caught:
        pull_session(url=url, **options)
    kept = ClientSession(websocket_url=urls.websocket_url_for_server_url(url), **options)
    with pytest.raises(expected):
        kept.pull()
    if case == "wrong app path":
        assert isinstance(caught.value, HandshakeRejected) and caught.value.status == 404
    elif case != "server down":
        assert isinstance(caught.value, HandshakeRejected) and caught.value.status is None
    return caught.value, kept


@pytest.mark.parametrize("case", FAILURES)
def test_failures_leak_nothing(
    case: str,
    signed_auth_server: BokehServer,
    secret_values: Secrets,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Messages, rendered tracebacks, session views, logs and warnings of a failure."""
    report = LeakReport(secret_values.needles)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error, kept = _fail(case, signed_auth_server, secret_values)
        report.check_exception("the raised error", error, reprs_of_chain=False)
        report.check_session("failed session", kept)
        assert kept.status.state is SessionState.ERROR
        with pytest.raises(BokehClientError) as again:
            kept.check_connection_errors()
        report.check_exception("check_connection_errors()", again.value, reprs_of_chain=False)
        kept.close()
    assert secret_values.tokens, "the spy saw no token"
    report.check_logs(caplog.records)
    report.check_warnings(caught)
    report.assert_clean()


@pytest.mark.parametrize(
    "case",
    FAILURES,
)
def test_reprs_of_chained_exceptions_leak_nothing(
    case: str, signed_auth_server: BokehServer, secret_values: Secrets
) -> None:
    """``repr`` of every exception chained to the raised one (what debuggers show)."""
    report = LeakReport(secret_values.needles)
    error, kept = _fail(case, signed_auth_server, secret_values)
    kept.close()
    report.check_exception("the raised error", error, reprs_of_chain=True)
    report.assert_clean()
