"""The ``%bokeh_*`` line magics: parse, call the synchronous API, render.

=====================  =========================================================
``%bokeh_pull``        open a session on an app and bind it to a name
``%bokeh_push``        push a Document, a layout or a session's document
``%bokeh_show``        a live view of a session in the cell (or a browser tab)
``%bokeh_sessions``    the open sessions of this kernel
``%bokeh_close``       close one session by name, or all of the magics' sessions
=====================  =========================================================

``%bokeh_pull?`` (and so on) shows the help generated from the argument
declarations. Bad arguments raise ``UsageError``, which IPython shows as one line
with the usage. So do failures to reach the server (refused connection, unknown
app, origin refused, timeout): the error tree of :mod:`bokeh_nb_client.exceptions`
already names the URL and the cause, and a traceback through the client would only
hide it. Other errors (a bug, a server ``ERROR`` reply) raise as they are.

Magics are synchronous by contract. They call the synchronous API, which runs the
I/O on the package's engine thread and waits for it; that wait never needs the
kernel's loop, so it is safe in a cell (see ``bokeh_nb_client.engine``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bokeh.io import curdoc
from bokeh.util.browser import get_browser_controller
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from .. import _bokeh
from ..client import ClientSession, pull_session, push_session, show_session
from ..exceptions import SessionStateError, TransportError
from ..session import AsyncClientSession
from ..status import SessionState
from . import rendering as render
from ._ipython import (
    argument,
    display,
    line_magic,
    magic_arguments,
    parse_argstring,
)
from .sessions import closable_sessions, close_session, kernel_sessions, known_sessions
from .views import live_views

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from . import SessionRegistry
    from .config import BokehClient

__all__ = ["BokehMagics"]

#: The name ``%bokeh_pull``/``%bokeh_push`` bind to, and ``%bokeh_show`` looks up.
DEFAULT_NAME = "session"


@contextlib.contextmanager
def _reported_as(magic: str) -> Iterator[None]:
    """Report a magic's expected failures as one-line ``UsageError``s naming the magic.

    Connection failures (refused, 404, 403, timeout, closed session) carry the URL
    and the cause in their message already; invalid values (``ValueError`` from the
    API, e.g. a malformed URL) are usage errors too. Anything else propagates with
    its traceback: it is a bug or a server ``ERROR`` reply, not a usage problem.
    """
    prefix = f"%{magic}: "
    try:
        yield
    except UsageError as exc:
        if str(exc).startswith(prefix):
            raise
        raise UsageError(prefix + str(exc)) from exc
    except (TransportError, SessionStateError, ValueError) as exc:
        raise UsageError(prefix + str(exc)) from exc
    except KeyboardInterrupt as exc:
        # The blocking call was cancelled on the engine (and a half-opened
        # session closed); a traceback through the engine would say nothing more.
        raise UsageError(prefix + "interrupted; the operation was cancelled") from exc


@magics_class
class BokehMagics(Magics):
    """Line magics for Bokeh server sessions (``%load_ext bokeh_nb_client``)."""

    def __init__(
        self, shell: InteractiveShell, *, config: BokehClient, sessions: SessionRegistry
    ) -> None:
        super().__init__(shell)
        self._config = config
        self._sessions = sessions

    @property
    def _shell(self) -> InteractiveShell:
        shell = self.shell
        if shell is None:
            raise RuntimeError("the magics are not attached to a shell")
        return shell

    # -- %bokeh_pull -----------------------------------------------------------------

    @magic_arguments()
    @argument(
        "url",
        nargs="?",
        default=None,
        help=(
            "The app's URL, e.g. http://localhost:5006/myapp (or localhost:5006/myapp: "
            "host:port is a server), or just the app's name, resolved against "
            "BokehClient.default_url (default: that URL itself)."
        ),
    )
    @argument("--session-id", default=None, help="Join this server session (default: a new one).")
    @argument("--as", dest="name", default=DEFAULT_NAME, help="Variable to bind the session to.")
    @argument(
        "--arg",
        dest="args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "A query argument for the app (repeatable); the app sees it when this "
            "request creates the session."
        ),
    )
    @line_magic
    def bokeh_pull(self, line: str) -> None:
        """Open a session on a Bokeh app, pull its document and bind it to a name.

        The session is a ``bokeh_nb_client.ClientSession``: ``session.document`` is
        kept in sync with the server both ways. A session already bound to the same
        name by these magics is closed first.
        """
        with _reported_as("bokeh_pull"):
            args = self._parse(self.bokeh_pull, line)
            name = self._check_name(args.name)
            url = self._app_url(args.url)
            arguments = _key_values(args.args)
            session = pull_session(
                session_id=args.session_id,
                url=url,
                arguments=arguments or None,
                **self._config.session_options(),
            )
            self._bind(name, session)
            from .panel import shared_panel

            display(shared_panel().track(session, name))

    # -- %bokeh_push -----------------------------------------------------------------

    @magic_arguments()
    @argument(
        "expr",
        nargs="?",
        default=None,
        metavar="EXPR",
        help=(
            "What to push, evaluated in the notebook: a Document, a model or layout "
            "(wrapped in a new Document), or a ClientSession (its document). "
            "Default: bokeh.io.curdoc(). Quote an expression that contains spaces."
        ),
    )
    @argument(
        "url",
        nargs="?",
        default=None,
        metavar="URL",
        help="The app's URL or name (default: BokehClient.default_url).",
    )
    @argument(
        "--session-id", default=None, help="The server session to replace (default: a new one)."
    )
    @argument(
        "--as",
        dest="name",
        default=None,
        help=f"Variable to bind the session to (default: {DEFAULT_NAME!r}).",
    )
    @line_magic
    def bokeh_push(self, line: str) -> None:
        """Push a document to a Bokeh server session and bind the session to a name.

        The server's document of that session is replaced by the local one; from
        then on changes flow both ways. With a ClientSession as EXPR and neither URL
        nor --session-id, that session's document is pushed to its own server
        session again (overwriting what the server changed), and it is bound to a
        name only if --as is given. A single positional argument is EXPR unless it
        contains "://" (then it is the URL and EXPR defaults to curdoc()).
        """
        with _reported_as("bokeh_push"):
            args = self._parse(self.bokeh_push, line)
            expr, url_arg = args.expr, args.url
            if expr is not None and url_arg is None and _looks_like_url(expr):
                expr, url_arg = None, expr
            value = self._evaluate(expr) if expr is not None else curdoc()
            from .panel import shared_panel

            if isinstance(value, ClientSession) and url_arg is None and args.session_id is None:
                value.push()
                if args.name is not None:  # keep `session` as it is unless asked
                    self._bind(self._check_name(args.name), value)
                display(shared_panel().track(value, args.name or self._sessions.name_of(value)))
                return
            name = self._check_name(args.name or DEFAULT_NAME)
            document = self._document_of(expr or "curdoc()", value)
            url = self._app_url(url_arg)
            session = push_session(
                document, session_id=args.session_id, url=url, **self._config.session_options()
            )
            self._bind(name, session)
            display(shared_panel().track(session, name))

    # -- %bokeh_show -----------------------------------------------------------------

    @magic_arguments()
    @argument(
        "expr",
        nargs="?",
        default=None,
        metavar="EXPR",
        help=(
            f"A session, or a model whose document belongs to one (default: the "
            f"variable {DEFAULT_NAME!r}, else the session the magics opened last)."
        ),
    )
    @argument(
        "--browser", action="store_true", help="Open a browser tab instead of an inline view."
    )
    @argument(
        "--new", choices=("tab", "window"), default="tab", help="With --browser: tab or window."
    )
    @line_magic
    def bokeh_show(self, line: str) -> None:
        """Show a live view of a session: inline in the cell's output, or in a browser.

        The inline view connects the browser to the same server session, so changes
        made from the kernel appear in it without re-running anything. Through
        the Jupyter server extension's proxy this needs nothing more; on the
        direct route the Bokeh server must accept the notebook page's origin
        (bokeh serve --allow-websocket-origin=HOST:PORT of the Jupyter server).
        The view explains what to check if it does not load.
        """
        with _reported_as("bokeh_show"):
            args = self._parse(self.bokeh_show, line)
            session, model = self._session_to_show(args.expr)
            state = session.status.state
            if state is not SessionState.CONNECTED:
                detail = f" ({session.status.last_error})" if session.status.last_error else ""
                raise UsageError(
                    f"session {render.short_id(session.id)} is {state.value}{detail}; "
                    "a view would not receive changes from this kernel. "
                    "Open a new one with %bokeh_pull."
                )
            if isinstance(session, ClientSession):
                # The browser pulls the document from the server: send local changes first.
                session.force_roundtrip()
            browser = args.browser or str(self._config.show) == "browser"
            if browser:
                show_session(
                    session_id=session.id,
                    url=session.app_url,
                    new=args.new,
                    controller=get_browser_controller(browser=self._config.browser),
                )
                return
            inner = session.async_session if isinstance(session, ClientSession) else session
            live_views().show(session.app_url, session.id, session=inner, model=model)

    # -- %bokeh_sessions ---------------------------------------------------------------

    @magic_arguments()
    @line_magic
    def bokeh_sessions(self, line: str) -> None:
        """List the open Bokeh sessions of this kernel with their names and states.

        Names are the magics' names and the notebook variables bound to a session.
        """
        with _reported_as("bokeh_sessions"):
            self._parse(self.bokeh_sessions, line)
            from .panel import shared_panel

            panel = shared_panel()
            panel.refresh()
            display(panel)

    # -- %bokeh_close ------------------------------------------------------------------

    @magic_arguments()
    @argument(
        "name",
        nargs="?",
        default=None,
        metavar="NAME",
        help="The variable of the session to close.",
    )
    @argument(
        "--all",
        dest="all",
        action="store_true",
        help="Close every synchronous session of this kernel (named by the magics or a variable).",
    )
    @line_magic
    def bokeh_close(self, line: str) -> None:
        """Close a session (NAME) or all of this kernel's sessions (--all).

        Closing sends what is still queued, then ends the kernel's connection; the
        local document stays usable. Inline views of the session are marked closed.
        An AsyncClientSession runs on the kernel's loop and cannot be closed from a
        magic: close it with ``await NAME.close()``.
        """
        with _reported_as("bokeh_close"):
            args = self._parse(self.bokeh_close, line)
            if (args.name is None) == (not args.all):
                raise UsageError("give a NAME or --all (not both)")
            if args.all:
                targets = closable_sessions(self._sessions, self._shell)
            else:
                value = self._lookup(args.name)
                if isinstance(value, AsyncClientSession):
                    raise UsageError(
                        f"{args.name} is an AsyncClientSession on the kernel's loop; "
                        f"close it with `await {args.name}.close()`"
                    )
                if not isinstance(value, ClientSession):
                    raise UsageError(f"{args.name} is not a session")
                targets = [(args.name, value)]
            for name, session in targets:
                close_session(session)
                print(f"closed {name} ({render.short_id(session.id)})")
            if args.all:
                rows = kernel_sessions(sessions=self._sessions, shell=self._shell)
                left = [row for row in rows if row.kind == "async"]
                for row in left:
                    label = ", ".join(row.names) or render.short_id(row.session.id)
                    print(
                        f"left open: {label} is an AsyncClientSession; "
                        "close it with `await <name>.close()`"
                    )

    # -- helpers: parsing and lookup ---------------------------------------------------

    def _parse(self, magic: Callable[..., Any], line: str) -> argparse.Namespace:
        try:
            return parse_argstring(magic, line)
        except UsageError as exc:
            # IPython's usage text starts with an reST "::"; keep only the usage line.
            usage = " ".join(getattr(magic, "parser").format_usage().replace("::", "").split())  # noqa: B009
            raise UsageError(f"{exc}\nusage: {usage}") from None

    def _check_name(self, name: str) -> str:
        if not name.isidentifier():
            raise UsageError(f"--as needs a Python identifier, got {name!r}")
        return name

    def _app_url(self, url: str | None) -> str:
        base = str(self._config.default_url)
        if url is None:
            return base
        if "://" in url:
            return url
        if _HOST_PORT.match(url):
            # "127.0.0.1:5006/app", "localhost:5006", "[::1]:5006/app": a server URL
            # without its scheme, not an app name under default_url.
            return "http://" + url
        return base.rstrip("/") + "/" + url.strip("/")

    def _evaluate(self, expr: str) -> Any:
        try:
            return self._shell.ev(expr)  # type: ignore[no-untyped-call]
        except Exception as exc:  # any error of the user's expression is a usage error here
            raise UsageError(f"cannot evaluate {expr!r}: {type(exc).__name__}: {exc}") from exc

    def _lookup(self, name: str) -> Any:
        known = self._sessions.get(name)
        if known is not None:
            return known
        if name not in self._shell.user_ns:
            raise UsageError(f"no session named {name!r}; see %bokeh_sessions")
        return self._shell.user_ns[name]

    def _document_of(self, expr: str, value: Any) -> _bokeh.Document:
        if isinstance(value, ClientSession):
            document = value.document
            if document is None:
                raise UsageError(f"{expr} has no document yet; pull or push it first")
            return document
        if isinstance(value, _bokeh.Document):
            return value
        if isinstance(value, _bokeh.Model):
            if value.document is not None:
                raise UsageError(
                    f"{expr} already belongs to a Document; push that document "
                    f"(%bokeh_push {expr}.document) or a model that is in none"
                )
            document = _bokeh.Document()
            document.add_root(value)
            return document
        raise UsageError(
            f"{expr} is a {type(value).__name__}; expected a Document, a model or layout, "
            "or a ClientSession"
        )

    def _session_to_show(
        self, expr: str | None
    ) -> tuple[ClientSession | AsyncClientSession, _bokeh.Model | None]:
        if expr is None:
            value = self._shell.user_ns.get(DEFAULT_NAME)
            if not isinstance(value, ClientSession | AsyncClientSession):
                value = self._sessions.latest()
            if value is None:
                raise UsageError("no session to show; open one with %bokeh_pull")
            return value, None
        value = self._evaluate(expr)
        if isinstance(value, ClientSession | AsyncClientSession):
            return value, None
        if isinstance(value, _bokeh.Model):
            doc = value.document
            owner = next(
                (
                    s
                    for s in known_sessions(self._sessions, self._shell)
                    if doc is not None and s.document is doc
                ),
                None,
            )
            if owner is None:
                raise UsageError(
                    f"{expr} is not in the document of an open session; push it first (%bokeh_push)"
                )
            return owner, value
        raise UsageError(f"{expr} is a {type(value).__name__}; expected a session or a model")

    def _bind(self, name: str, session: ClientSession) -> None:
        previous = self._sessions.bind(name, session)
        if previous is not None and self._sessions.name_of(previous) is None:
            # The name's previous session is bound nowhere else: close it rather
            # than leak it (documented on %bokeh_pull).
            close_session(previous)
        self._shell.push({name: session})  # type: ignore[no-untyped-call]


#: A server address without a scheme: ``host:port`` (a name, IPv4 or bracketed
#: IPv6 address, then a port), alone or followed by a path.
_HOST_PORT = re.compile(
    r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):\d{1,5}(/|$)"
)


def _looks_like_url(text: str) -> bool:
    return "://" in text or _HOST_PORT.match(text) is not None


def _key_values(pairs: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--arg needs KEY=VALUE, got {pair!r}")
        result[key] = value
    return result
