"""Shared helpers of the deployment tests (imported by ``conftest.py`` and the tests).

Test modules import from here (``from .deploy_support import ...``), never from
``conftest``: several directories of this suite have a ``conftest.py``, and a
plain ``from conftest import ...`` gets whichever of them was imported last.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import trustme
from bokeh.document import Document
from bokeh.model import Model
from bokeh_server import BokehServer

from bokeh_nb_client import SessionState, SessionStatus

from .nginx_proxy import Nginx, TlsFiles

M = TypeVar("M", bound=Model)

__all__ = [
    "AUTH_MODULE",
    "DEPLOY_APPS_DIR",
    "DEPLOY_DIR",
    "INTEROP_APPS_DIR",
    "StartNginx",
    "StartUpstream",
    "StatusRecorder",
    "TlsSetup",
    "app_path",
    "named",
    "write_server_cert",
]

DEPLOY_DIR = Path(__file__).parent
DEPLOY_APPS_DIR = DEPLOY_DIR / "apps"
INTEROP_APPS_DIR = DEPLOY_DIR.parent / "interop" / "apps"
#: The ``--auth-module`` that accepts a ``user`` cookie or an ``X-User`` header.
AUTH_MODULE = DEPLOY_DIR.parent / "interop" / "apphelpers" / "auth_cookie.py"


def app_path(name: str) -> Path:
    """The file of app ``name``: ``tests/deploy/apps`` first, then ``tests/interop/apps``."""
    for directory in (DEPLOY_APPS_DIR, INTEROP_APPS_DIR):
        candidate = directory / f"{name}.py"
        if candidate.is_file():
            return candidate
    raise ValueError(f"no app {name!r} in {DEPLOY_APPS_DIR} or {INTEROP_APPS_DIR}")


def named(doc: Document | None, name: str, kind: type[M]) -> M:
    """The model called ``name`` in ``doc``, checked to be a ``kind``."""
    assert doc is not None, "the session has no document"
    model = doc.select_one({"name": name})
    assert isinstance(model, kind), f"{name!r} is {type(model).__name__}, not {kind.__name__}"
    return model


class StartNginx(Protocol):
    """The type of the ``start_nginx`` fixture."""

    def __call__(self, http_block: str, *, tls: bool) -> Nginx:
        """Start nginx with ``http_block`` (from ``proxy_config``); stopped after the test."""
        ...


class StartUpstream(Protocol):
    """The type of the ``start_upstream`` fixture."""

    def __call__(
        self,
        apps: Sequence[str],
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> BokehServer:
        """Start ``bokeh serve`` for the named apps; stopped after the test."""
        ...


@dataclass(frozen=True)
class TlsSetup:
    """A private CA, and a certificate it issued for 127.0.0.1 and localhost."""

    ca: trustme.CA
    files: TlsFiles

    def client_context(self) -> ssl.SSLContext:
        """A client context that verifies certificates against this CA only."""
        return ssl.create_default_context(cadata=self.ca.cert_pem.bytes().decode("ascii"))


def write_server_cert(ca: trustme.CA, directory: Path, *identities: str) -> TlsFiles:
    """Issue a certificate for ``identities`` and write it as nginx wants it."""
    leaf = ca.issue_cert(*identities)
    directory.mkdir(parents=True, exist_ok=True)
    chain = directory / "server-chain.pem"
    key = directory / "server-key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return TlsFiles(cert_chain=chain, private_key=key)


class StatusRecorder:
    """Keeps every status snapshot a session publishes; waits for a state (any thread).

    Subscribers run on the thread that publishes (the engine thread for the sync
    API), so the record is guarded by a condition that waiters block on.
    """

    def __init__(self, subscribe: Callable[[Callable[[SessionStatus], None]], object]) -> None:
        """Subscribe with ``subscribe`` (a session's ``subscribe`` method)."""
        self.snapshots: list[SessionStatus] = []
        self._changed = threading.Condition()
        subscribe(self._record)

    def _record(self, status: SessionStatus) -> None:
        with self._changed:
            self.snapshots.append(status)
            self._changed.notify_all()

    @property
    def states(self) -> list[SessionState]:
        """The states seen, in order, with consecutive repeats collapsed."""
        with self._changed:
            states: list[SessionState] = []
            for status in self.snapshots:
                if not states or states[-1] is not status.state:
                    states.append(status.state)
            return states

    def wait_for(self, state: SessionState, after: int = 0, timeout: float = 20.0) -> int:
        """Wait until ``state`` is in :attr:`states` at an index >= ``after``; return it."""
        with self._changed:
            self._changed.wait_for(lambda: state in self.states[after:], timeout)
        states = self.states
        assert state in states[after:], f"state {state} not reached; saw {states}"
        return states.index(state, after)
