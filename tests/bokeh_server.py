"""Run a real ``bokeh serve`` subprocess for tests.

:class:`BokehServer` starts ``python -m bokeh serve`` on 127.0.0.1 at a free port,
waits until its HTTP server answers, and offers the URLs of its apps plus the
process controls the interop tests need: stop, kill, pause and resume (SIGSTOP and
SIGCONT, to simulate a hung server), and restart on the same port (to simulate a
server that goes away and comes back with no sessions).

Invariants:

* The server runs in its own process group, and every signal goes to the whole
  group, so nothing it spawned (``--num-procs``) survives it.
* Every server started by this module is stopped at interpreter exit at the
  latest (an ``atexit`` safety net), even when a test forgets to stop it.
* Output goes to a log file in a private temporary directory, never to a pipe
  that could fill up and block the server. :meth:`BokehServer.log_text` reads it.

This module is plain Python (no pytest), so benchmarks and scripts can use it too::

    with BokehServer.start([Path("tests/interop/apps/basic.py")]) as server:
        print(server.ws_url("basic"))   # ws://127.0.0.1:PORT/basic/ws

How ``bokeh serve`` names apps (PROTOCOL.md §1.1): ``dir/name.py`` and the
directory ``dir/name/`` are both served at ``/name``, below the ``--prefix`` if
one is given. With exactly one app, ``/`` redirects to it; with none, an empty
app is served at ``/``.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "BokehServer",
    "StartBokehServer",
    "find_free_port",
    "normalize_prefix",
    "port_is_free",
]

HOST = "127.0.0.1"

#: How often readiness is polled while the server starts.
_POLL_INTERVAL = 0.05
#: How long :meth:`BokehServer.stop` waits after SIGTERM before it sends SIGKILL.
_STOP_TIMEOUT = 10.0
#: How much of the log a startup failure quotes.
_LOG_TAIL_CHARS = 4000
#: What bokeh serve logs when its port is taken (another process won the race).
_PORT_IN_USE = re.compile(r"already in use", re.IGNORECASE)

#: Servers not yet stopped; the atexit hook kills whatever is left.
_LIVE: set[BokehServer] = set()
#: Log directories of every server; the atexit hook deletes them.
_LOG_DIRS: list[Path] = []


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The port is found by binding to port 0 and closing the socket again, so
    another process may take it before the caller does; :meth:`BokehServer.start`
    retries with a new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 right now.

    Binds with ``SO_REUSEADDR``, as tornado does, so connections of a stopped
    server lingering in TIME_WAIT do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def normalize_prefix(prefix: str | None) -> str:
    """Normalize a ``--prefix`` value the way bokeh serve does.

    ``None``, ``""`` and ``"/"`` become ``""``; ``"foo"``, ``"/foo"`` and
    ``"/foo/"`` all become ``"/foo"``.
    """
    stripped = (prefix or "").strip("/")
    return f"/{stripped}" if stripped else ""


def _option_value(args: Sequence[str], option: str) -> str | None:
    """Return the last value given to ``option`` (``--opt v`` or ``--opt=v``) in ``args``."""
    value: str | None = None
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(option + "="):
            value = arg[len(option) + 1 :]
    return value


def _app_name(app: Path) -> str:
    """Return the URL name bokeh serve gives an app file or directory (its stem)."""
    return app.stem if app.suffix in (".py", ".ipynb") else app.name


class BokehServer:
    """A ``bokeh serve`` subprocess on 127.0.0.1.

    Create one with :meth:`start`, which returns once the server answers HTTP.
    Use it as a context manager, or call :meth:`stop` when done; both are
    idempotent. All methods are meant for one thread at a time.

    Attributes:
        host: Always ``"127.0.0.1"``.
        port: The TCP port, kept across :meth:`restart`.
        prefix: The ``--prefix`` from the extra arguments, normalized to ``""`` or
            ``"/foo"``.
        apps: The app paths the server was started with.
        log_path: The file that receives the server's stdout and stderr.
    """

    host: str
    port: int
    prefix: str
    apps: tuple[Path, ...]
    log_path: Path

    def __init__(
        self,
        apps: Sequence[Path],
        *,
        port: int,
        extra_args: Sequence[str],
        env: Mapping[str, str | None] | None,
        startup_timeout: float,
    ) -> None:
        """Prepare a server without starting it; use :meth:`start` instead."""
        self.host = HOST
        self.port = port
        self.apps = tuple(Path(app).resolve() for app in apps)
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.prefix = normalize_prefix(_option_value(self.extra_args, "--prefix"))
        self.startup_timeout = startup_timeout
        self._secure = _option_value(self.extra_args, "--ssl-certfile") is not None
        self._env = self._build_env(env)
        log_dir = Path(tempfile.mkdtemp(prefix="bokeh-serve-"))
        _LOG_DIRS.append(log_dir)
        self.log_path = log_dir / "bokeh-serve.log"
        self._process: subprocess.Popen[bytes] | None = None
        # True from spawn until the group was last signalled after the leader
        # exited; afterwards the group id may be reused, so it is never signalled.
        self._group_alive = False
        self._paused = False
        self._run_log_offset = 0
        self.startup_seconds: float | None = None
        """Seconds the last (re)start took until the server answered HTTP."""

    # Construction -------------------------------------------------------------

    @classmethod
    def start(
        cls,
        apps: Sequence[Path],
        *,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> Self:
        """Start ``bokeh serve`` for ``apps`` and wait until it answers HTTP.

        Args:
            apps: App files or directories; each is served at ``/<stem>``. An
                empty sequence serves an empty app at ``/``.
            extra_args: More ``bokeh serve`` options, for example
                ``("--prefix", "foo")`` or ``("--session-ids", "signed")``. They
                come after the address, port and origin options.
            env: Changes to this process's environment for the server: a value
                of ``None`` removes the variable. Everything else, including
                ``BOKEH_SIMPLE_IDS``, passes through unchanged, and
                ``PYTHONUNBUFFERED=1`` is always set.
            port: The port to listen on; by default a free one is picked (and
                picked again if another process takes it first).
            startup_timeout: Seconds to wait for the server to answer.

        Returns:
            The running server.

        Raises:
            RuntimeError: The server exited or did not answer in time. The
                message ends with the tail of the server's log.
        """
        server = cls(
            apps,
            port=port if port is not None else find_free_port(),
            extra_args=extra_args,
            env=env,
            startup_timeout=startup_timeout,
        )
        server._launch(retry_port=port is None)
        return server

    @staticmethod
    def _build_env(overrides: Mapping[str, str | None] | None) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # URLs ---------------------------------------------------------------------

    @property
    def app_names(self) -> tuple[str, ...]:
        """The URL names of the apps, in the order given (``"basic"`` for ``basic.py``)."""
        return tuple(_app_name(app) for app in self.apps)

    @property
    def scheme(self) -> str:
        """``"https"`` when the server was started with ``--ssl-certfile``, else ``"http"``."""
        return "https" if self._secure else "http"

    def path(self, app: str = "") -> str:
        """Return the URL path of ``app`` below the prefix (``"/prefix/app"``; ``""`` for ``/``)."""
        name = app.strip("/")
        return f"{self.prefix}/{name}" if name else self.prefix

    def http_url(self, app: str = "") -> str:
        """Return the page URL of ``app``, for example ``http://127.0.0.1:PORT/prefix/app``.

        With ``app=""`` this is the server root below the prefix (no trailing
        slash), which is also the app URL of a server started with no apps.
        """
        return f"{self.scheme}://{self.host}:{self.port}{self.path(app)}"

    def ws_url(self, app: str = "") -> str:
        """Return the websocket URL of ``app``: ``ws://127.0.0.1:PORT/prefix/app/ws``."""
        scheme = "wss" if self._secure else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.path(app)}/ws"

    def warm(self, app: str) -> None:
        """Load ``app`` once (a GET of its page runs it in a new server session).

        A fresh server loads an app's code on its first session, before that
        session's ACK; on a loaded machine or an older bokeh this takes more than
        a second. Tests that give a session a short timeout warm the app first, so
        the timeout measures what they test, not the server's start-up.
        """
        with urllib.request.urlopen(self.http_url(app), timeout=60) as page:
            page.read()

    # Process state --------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid (and process group id) of the current server process, if any."""
        return self._process.pid if self._process is not None else None

    @property
    def argv(self) -> list[str]:
        """The full command line of the server."""
        return [
            sys.executable,
            "-m",
            "bokeh",
            "serve",
            *(str(app) for app in self.apps),
            "--address",
            self.host,
            "--port",
            str(self.port),
            "--allow-websocket-origin",
            f"{self.host}:{self.port}",
            "--allow-websocket-origin",
            f"localhost:{self.port}",
            *self.extra_args,
        ]

    def is_running(self) -> bool:
        """Whether the server process exists and has not exited (paused counts as running)."""
        return self._process is not None and self._process.poll() is None

    @property
    def paused(self) -> bool:
        """Whether the server is stopped with SIGSTOP (see :meth:`pause`)."""
        return self._paused

    def log_text(self) -> str:
        """Return everything the server has written so far (all runs, after restarts)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> re.Match[str]:
        """Wait until the log matches the regular expression ``pattern``.

        Args:
            pattern: A regular expression, searched in the whole log.
            timeout: Seconds to wait.

        Returns:
            The first match.

        Raises:
            TimeoutError: Nothing matched in time; the message quotes the log tail.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match is not None:
                return match
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{pattern!r} not in the bokeh serve log{self._log_tail()}")
            time.sleep(_POLL_INTERVAL)

    # Process control --------------------------------------------------------------

    def stop(self) -> None:
        """Terminate the server: SIGTERM, up to 10 s of grace, then SIGKILL.

        Also resumes a paused server so that it can act on SIGTERM. Idempotent.
        """
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(signal.SIGTERM)
            if self._paused:
                self._signal_group(signal.SIGCONT)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait()
        self._reap()

    def kill(self) -> None:
        """Kill the server at once with SIGKILL (no cleanup on its side). Idempotent."""
        process = self._process
        if process is not None and process.poll() is None:
            self._signal_group(signal.SIGKILL)
            process.wait()
        self._reap()

    def pause(self) -> None:
        """Freeze the server with SIGSTOP.

        Its sockets stay open and the kernel still accepts TCP connections, but
        nothing answers: no HTTP, no websocket messages, no pings.
        """
        self._require_running("pause")
        self._signal_group(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused server continue (SIGCONT)."""
        self._require_running("resume")
        self._signal_group(signal.SIGCONT)
        self._paused = False

    def restart(self, *, graceful: bool = True) -> None:
        """Replace the server process with a new one on the same port.

        The old process is stopped first (:meth:`stop`, or :meth:`kill` with
        ``graceful=False``); the new one starts with the same arguments and
        environment and has none of the old sessions. Returns once it answers.

        Raises:
            RuntimeError: The new process did not come up (see :meth:`start`).
        """
        if graceful:
            self.stop()
        else:
            self.kill()
        self._launch(retry_port=False)

    def __enter__(self) -> Self:
        """Return the server itself; it is already running."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def __repr__(self) -> str:
        """Show where the server listens and whether it runs."""
        state = "paused" if self._paused else "running" if self.is_running() else "stopped"
        return f"<BokehServer {self.http_url()} apps={list(self.app_names)} {state}>"

    # Internals --------------------------------------------------------------------

    def _launch(self, *, retry_port: bool) -> None:
        """Start the process and wait until it answers, retrying on a stolen port."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            started = time.monotonic()
            try:
                # Without this check another server already on the port would
                # answer the readiness probe while ours fails to bind.
                if not port_is_free(self.port):
                    raise _PortTakenError
                self._spawn()
                self._wait_ready(deadline)
            except _PortTakenError:
                self._reap()
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"bokeh serve could not bind port {self.port}{self._log_tail()}"
                    ) from None
                if retry_port:
                    self.port = find_free_port()
                else:
                    # The same port is wanted (restart): give its old owner a moment.
                    time.sleep(0.2)
                continue
            except BaseException:
                self.kill()
                raise
            self.startup_seconds = time.monotonic() - started
            return

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"=== {' '.join(self.argv)}\n".encode())
            log.flush()
            self._run_log_offset = log.tell()
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                # Own session, hence own process group: signals reach its children.
                start_new_session=True,
            )
        self._group_alive = True
        self._paused = False
        _LIVE.add(self)

    def _wait_ready(self, deadline: float) -> None:
        """Poll until the server answers any HTTP status, or raise."""
        # ``<app>/metadata`` proves the app's routes exist without creating a
        # session (a GET of the app page would run the app). Without apps, the
        # empty app answers at the root. Any status counts, 302 to --auth-module's
        # login_url included.
        probe = self.path(self.app_names[0]) + "/metadata" if self.apps else self.path() + "/"
        process = self._process
        assert process is not None
        while True:
            if process.poll() is not None:
                if _PORT_IN_USE.search(self._run_log()):
                    raise _PortTakenError
                raise RuntimeError(
                    f"bokeh serve exited with code {process.returncode} during startup"
                    f"{self._log_tail()}"
                )
            if self._answers(probe):
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"bokeh serve did not answer at {self.http_url()} within "
                    f"{self.startup_timeout} s{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _answers(self, path: str) -> bool:
        """Whether a GET of ``path`` gets any HTTP response."""
        connection: http.client.HTTPConnection
        if self._secure:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=2.0, context=context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=2.0)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return True

    def _run_log(self) -> str:
        """The log of the current run only."""
        with self.log_path.open("rb") as log:
            log.seek(self._run_log_offset)
            return log.read().decode("utf-8", errors="replace")

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._process is None or not self._group_alive:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, sig)

    def _reap(self) -> None:
        """Forget the finished process after removing any stragglers in its group."""
        if self._process is not None:
            # Children (``--num-procs``) may outlive the leader. The group id
            # cannot be reused while any of them exists, so one last SIGKILL to
            # the group is safe now, but not later: hence ``_group_alive``.
            self._signal_group(signal.SIGKILL)
            self._group_alive = False
            if self._process.poll() is None:
                self._process.wait()
        self._paused = False
        _LIVE.discard(self)

    def _require_running(self, action: str) -> None:
        if not self.is_running():
            raise RuntimeError(f"cannot {action}: {self!r} is not running")

    def _log_tail(self) -> str:
        text = self.log_text()
        tail = text[-_LOG_TAIL_CHARS:]
        prefix = "...\n" if len(tail) < len(text) else ""
        return f"\n--- bokeh serve log ({self.log_path}) ---\n{prefix}{tail}"


class _PortTakenError(Exception):
    """The server exited because its port was taken."""


class StartBokehServer(Protocol):
    """The type of the ``start_bokeh_server`` fixture (see ``tests/conftest.py``)."""

    def __call__(
        self,
        apps: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> BokehServer:
        """Start a server for the named apps; it is stopped when the test ends."""
        ...


@atexit.register
def _stop_everything() -> None:
    """Kill every server still running and delete the log directories."""
    for server in list(_LIVE):
        server.kill()
    for log_dir in _LOG_DIRS:
        shutil.rmtree(log_dir, ignore_errors=True)
