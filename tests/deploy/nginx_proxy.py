"""Run Debian's nginx as a private reverse proxy in front of ``bokeh serve``, for tests.

:class:`Nginx` starts ``nginx`` in the foreground (``daemon off``) as a child of the
test process, with a prefix directory, configuration, pid file, error log, access
log and every temporary directory inside one private temporary directory, so it
never touches ``/etc/nginx``, ``/var/log/nginx`` or ``/var/lib/nginx`` and several
instances can run side by side. :func:`proxy_config` writes the configuration a
Bokeh deployment needs:

* websocket upgrade through the proxy: ``proxy_http_version 1.1`` plus the
  ``Upgrade`` and ``Connection`` headers (the ``$connection_upgrade`` map), and
  read/send timeouts long enough for idle sessions;
* ``Host`` and ``X-Forwarded-*``/``X-Real-IP`` headers, for ``bokeh serve
  --use-xheaders``;
* optional TLS termination (``listen PORT ssl``) and HTTP basic auth;
* an upstream group of one or more ``bokeh serve`` processes, with optional
  session affinity (see :data:`SESSION_AFFINITY`).

Invariants:

* nginx runs in its own process group; :meth:`Nginx.stop` signals the group, so
  no worker outlives the master. An ``atexit`` hook stops whatever a test forgot.
* :meth:`Nginx.start` returns only once nginx answers HTTP on its port, and
  raises with the tail of nginx's error log when it cannot start.
* A missing nginx binary is an error (:class:`NginxMissing`), never a skip.

This module is plain Python (no pytest).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "HEALTH_PATH",
    "SESSION_AFFINITY",
    "Nginx",
    "NginxMissing",
    "TlsFiles",
    "find_nginx",
    "proxy_config",
    "write_htpasswd",
]

HOST = "127.0.0.1"

#: A location answered by nginx itself; :meth:`Nginx.start` polls it for readiness.
HEALTH_PATH = "/nginx-health"

#: Where Debian installs nginx; ``$PATH`` is searched first.
_DEBIAN_NGINX = Path("/usr/sbin/nginx")
_POLL_INTERVAL = 0.05
_STOP_TIMEOUT = 10.0
_LOG_TAIL_CHARS = 4000
_PORT_IN_USE = re.compile(r"Address already in use")

#: Session affinity for a pool of ``bokeh serve`` processes.
#:
#: A Bokeh session lives in the memory of one ``bokeh serve`` process, so every
#: websocket of a session must reach the process that holds it. The client sends
#: the session id only inside its token, and the token travels in the
#: ``Sec-WebSocket-Protocol`` header as ``bokeh,<token>`` (there is no
#: ``bokeh-session-id`` query argument on the websocket, so ``$arg_...`` hashing
#: does not work, and ``ip_hash`` sends every loopback client to one upstream).
#:
#: Hashing the whole header would spread sessions, but not keep them: a token
#: carries its expiry time, so each reconnect mints a different token and may be
#: sent to another process. The token is ``base64url(json)`` with the JSON
#: starting ``{"session_id": "<id>", ...`` (bokeh.util.token.generate_jwt_token).
#: Its first 80 base64 characters encode the first 60 bytes of that JSON, which
#: are the fixed 16-byte preamble and the first 44 characters of the session id,
#: the random part every session id starts with. So those 80 characters are a
#: stable, per-session key: different for every session, identical for every
#: token of one session. The ``map`` below extracts them, and ``hash ...
#: consistent`` routes on them; a header of another shape falls back to the whole
#: header (spread, but not sticky across reconnects).
#:
#: When the chosen upstream is down, ``proxy_next_upstream error timeout`` (the
#: default, spelled out) retries the next one, and ``max_fails=1`` with a
#: ``fail_timeout`` marks the dead one unavailable, so a session whose process
#: died is re-created on a surviving one (its client's reconnect policy re-pulls).
SESSION_AFFINITY = r"""
    map $http_sec_websocket_protocol $bokeh_session_affinity {
        "~^bokeh,\s*(?<session_key>[A-Za-z0-9_-]{80})" $session_key;
        default $http_sec_websocket_protocol;
    }
"""


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """Write an ``auth_basic_user_file`` with salted SHA-1 entries (nginx's ``{SSHA}``)."""
    lines = []
    for user, password in users.items():
        salt = secrets.token_bytes(8)
        digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
        lines.append(f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode('ascii')}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


class NginxMissing(RuntimeError):
    """nginx is not installed: the deployment tests need Debian's ``nginx`` package."""


def find_nginx() -> Path:
    """Return the nginx binary (``$PATH``, then ``/usr/sbin/nginx``).

    Raises:
        NginxMissing: neither exists.
    """
    found = shutil.which("nginx")
    if found:
        return Path(found)
    if _DEBIAN_NGINX.is_file() and os.access(_DEBIAN_NGINX, os.X_OK):
        return _DEBIAN_NGINX
    raise NginxMissing(
        "nginx is not installed (looked in $PATH and /usr/sbin/nginx); the tests in "
        "tests/deploy run a real nginx as a reverse proxy. Install it with "
        "`apt-get install -y nginx` (CI must install it before running the tests)."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate chain and its private key, for ``listen ... ssl``."""

    cert_chain: Path
    private_key: Path


def proxy_config(
    *,
    upstream_ports: Sequence[int],
    location: str = "/bokeh/",
    tls: TlsFiles | None = None,
    session_affinity: bool = False,
    max_fails: int = 1,
    fail_timeout: float = 30.0,
    basic_auth_file: Path | None = None,
) -> str:
    """Return the ``http { ... }`` part of an nginx.conf proxying ``location`` to Bokeh.

    ``@PORT@`` and ``@WORKDIR@`` are left as placeholders; :class:`Nginx` fills them
    in. The location is passed through unchanged (``proxy_pass`` without a URI),
    so the upstreams must run with the matching ``--prefix`` (``/bokeh/`` needs
    ``bokeh serve --prefix bokeh``).

    Args:
        upstream_ports: Ports of ``bokeh serve`` processes on 127.0.0.1.
        location: The URL prefix to proxy, with slashes on both ends.
        tls: Terminate TLS with this certificate, or serve plain HTTP.
        session_affinity: Route each Bokeh session to one upstream
            (:data:`SESSION_AFFINITY`); without it nginx balances round-robin.
        max_fails: Failed attempts after which an upstream is skipped ...
        fail_timeout: ... for this many seconds.
        basic_auth_file: Require HTTP basic auth on the location, with this
            ``auth_basic_user_file`` (see :func:`write_htpasswd`).
    """
    if not upstream_ports:
        raise ValueError("at least one upstream port is needed")
    if not (location.startswith("/") and location.endswith("/")):
        raise ValueError(f"location must start and end with '/', got {location!r}")
    servers = "\n".join(
        f"        server {HOST}:{port} max_fails={max_fails} fail_timeout={fail_timeout:g}s;"
        for port in upstream_ports
    )
    balance = "        hash $bokeh_session_affinity consistent;\n" if session_affinity else ""
    listen = "listen 127.0.0.1:@PORT@ ssl;" if tls is not None else "listen 127.0.0.1:@PORT@;"
    tls_lines = ""
    if tls is not None:
        tls_lines = (
            f"        ssl_certificate {tls.cert_chain};\n"
            f"        ssl_certificate_key {tls.private_key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        )
    auth = ""
    if basic_auth_file is not None:
        auth = (
            '            auth_basic "bokeh";\n'
            f"            auth_basic_user_file {basic_auth_file};\n"
        )
    return f"""
http {{
    client_body_temp_path @WORKDIR@/client_body_temp;
    proxy_temp_path @WORKDIR@/proxy_temp;
    fastcgi_temp_path @WORKDIR@/fastcgi_temp;
    uwsgi_temp_path @WORKDIR@/uwsgi_temp;
    scgi_temp_path @WORKDIR@/scgi_temp;

    log_format upstreams '$remote_addr "$request" $status upstream=$upstream_addr '
                         'upstream_status=$upstream_status';
    access_log @WORKDIR@/access.log upstreams;

    # "Connection: upgrade" for websocket requests, "close" for the others.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
{SESSION_AFFINITY if session_affinity else ""}
    upstream bokeh_pool {{
{balance}{servers}
    }}

    server {{
        {listen}
        server_name localhost 127.0.0.1;
{tls_lines}
        location = {HEALTH_PATH} {{
            return 200 "ok\\n";
        }}

        location {location} {{
{auth}            proxy_pass http://bokeh_pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_buffering off;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


#: Instances not yet stopped; the atexit hook stops whatever is left.
_LIVE: set[Nginx] = set()
#: Temporary directories this module created; the atexit hook deletes them.
_OWN_DIRS: list[Path] = []


class Nginx:
    """One nginx master (and its worker) in a private directory, on 127.0.0.1.

    Create with :meth:`start`; use as a context manager or call :meth:`stop`.

    Attributes:
        port: The port nginx listens on.
        workdir: The prefix directory: config, logs, pid file and temp paths.
        tls: Whether the server block terminates TLS.
    """

    def __init__(self, http_block: str, *, tls: bool, workdir: Path | None = None) -> None:
        """Prepare without starting; use :meth:`start`."""
        self.binary = find_nginx()
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="deploy-nginx-"))
            _OWN_DIRS.append(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.tls = tls
        self.port = 0
        self._http_block = http_block
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        http_block: str,
        *,
        tls: bool,
        workdir: Path | None = None,
        startup_timeout: float = 15.0,
    ) -> Self:
        """Write the configuration, start nginx on a free port, wait until it answers.

        Args:
            http_block: The ``http { ... }`` text (see :func:`proxy_config`), with
                ``@PORT@`` and ``@WORKDIR@`` placeholders.
            tls: Whether that block listens with ``ssl`` (for the readiness probe).
            workdir: The prefix directory (default: a new temporary directory,
                deleted at interpreter exit).
            startup_timeout: Seconds until nginx must answer.

        Raises:
            NginxMissing: nginx is not installed.
            RuntimeError: nginx exited or did not answer; the message quotes its
                error log.
        """
        nginx = cls(http_block, tls=tls, workdir=workdir)
        nginx._launch(startup_timeout)
        return nginx

    # Paths and URLs ------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        """The generated nginx.conf."""
        return self.workdir / "nginx.conf"

    @property
    def error_log_path(self) -> Path:
        """nginx's error log (startup messages included, thanks to ``-e``)."""
        return self.workdir / "error.log"

    @property
    def access_log_path(self) -> Path:
        """The access log: one line per request, with the upstream it went to."""
        return self.workdir / "access.log"

    @property
    def scheme(self) -> str:
        """``"https"`` when nginx terminates TLS, else ``"http"``."""
        return "https" if self.tls else "http"

    def url(self, path: str = "/") -> str:
        """The URL of ``path`` on this nginx, e.g. ``https://127.0.0.1:PORT/bokeh/basic``."""
        return f"{self.scheme}://{HOST}:{self.port}{path}"

    def error_log(self) -> str:
        """The error log so far ("" before nginx wrote one)."""
        return _read(self.error_log_path)

    def access_log(self) -> str:
        """The access log so far (websocket requests appear when they end)."""
        return _read(self.access_log_path)

    def wait_for_access(self, text: str, timeout: float = 10.0) -> str:
        """Wait until the access log contains ``text``; return the log.

        nginx writes a websocket's line when the proxied connection ends, a moment
        after the client closed it, so tests poll for it (there is no event).

        Raises:
            TimeoutError: the text did not appear in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            log = self.access_log()
            if text in log:
                return log
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{text!r} not in the nginx access log:\n{log[-_LOG_TAIL_CHARS:]}"
                )
            time.sleep(_POLL_INTERVAL)

    @property
    def pid(self) -> int | None:
        """The master's pid (also its process group id) while started, else None."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """Whether the master process exists and has not exited."""
        return self._process is not None and self._process.poll() is None

    # Process control ---------------------------------------------------------------

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the group), SIGKILL after 10 s. Idempotent.

        The master exits only after its worker did, so once it is reaped the group
        is empty and is never signalled again.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait()
        else:
            # The master died on its own: a worker may be left; signal the group once.
            self._signal_group(signal.SIGKILL)
        self._process = None
        _LIVE.discard(self)

    def __enter__(self) -> Self:
        """Return the running nginx."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop nginx."""
        self.stop()

    def __repr__(self) -> str:
        """Where nginx listens and whether it runs."""
        state = "running" if self.is_running() else "stopped"
        return f"<Nginx {self.url('/')} {state} workdir={self.workdir}>"

    # Internals ----------------------------------------------------------------------

    def _write_config(self) -> None:
        # The main context may not repeat ``pid``/``error_log``: they come from -g.
        user = "user root;\n" if os.geteuid() == 0 else ""
        body = self._http_block.replace("@PORT@", str(self.port)).replace(
            "@WORKDIR@", str(self.workdir)
        )
        self.config_path.write_text(
            f"{user}worker_processes 1;\nevents {{\n    worker_connections 4096;\n}}\n{body}",
            encoding="utf-8",
        )

    @property
    def argv(self) -> list[str]:
        """The command line: foreground, private prefix, pid file and error log."""
        return [
            str(self.binary),
            "-p",
            str(self.workdir),
            "-c",
            str(self.config_path),
            "-e",
            str(self.error_log_path),
            "-g",
            f"daemon off; pid {self.workdir / 'nginx.pid'}; error_log {self.error_log_path} info;",
        ]

    def _launch(self, startup_timeout: float) -> None:
        deadline = time.monotonic() + startup_timeout
        while True:
            self.port = _free_port()
            self._write_config()
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            _LIVE.add(self)
            try:
                self._wait_ready(deadline)
            except _PortTaken:
                self.stop()
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"nginx found no free port{self._log_tail()}") from None
                continue
            except BaseException:
                self.stop()
                raise
            return

    def _wait_ready(self, deadline: float) -> None:
        process = self._process
        assert process is not None
        while True:
            if process.poll() is not None:
                if _PORT_IN_USE.search(self.error_log()):
                    self.error_log_path.write_text("", encoding="utf-8")
                    raise _PortTaken
                raise RuntimeError(
                    f"nginx exited with code {process.returncode} during startup "
                    f"(command: {' '.join(self.argv)}){self._log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"nginx did not answer at {self.url('/')}{self._log_tail()}")
            time.sleep(_POLL_INTERVAL)

    def _answers(self) -> bool:
        connection: http.client.HTTPConnection
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(HOST, self.port, timeout=2.0, context=context)
        else:
            connection = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
        try:
            connection.request("GET", HEALTH_PATH)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return response.status == 200

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, sig)

    def _log_tail(self) -> str:
        text = self.error_log()
        return f"\n--- nginx error log ({self.error_log_path}) ---\n{text[-_LOG_TAIL_CHARS:]}"


class _PortTaken(Exception):
    """nginx could not bind its port (another process took it first)."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@atexit.register
def _stop_everything() -> None:
    for nginx in list(_LIVE):
        nginx.stop()
    for workdir in _OWN_DIRS:
        shutil.rmtree(workdir, ignore_errors=True)
