"""The one error tree of bokeh_nb_client. No other module defines exceptions.

::

    BokehClientError
    ├── TransportError (OSError)
    │   ├── ConnectError                 cannot open the socket: DNS, refused, TLS
    │   │   ├── HandshakeRejected        HTTP status on upgrade (404 app, 403 origin/token),
    │   │   │                            or a close between the upgrade and ACK
    │   │   └── ServerUnreachable        a request while the session reconnects in vain
    │   ├── ConnectionClosed (RuntimeError)   .code, .reason
    │   │   ├── ConnectionClosedOK       a normal close (1000/1001)
    │   │   └── ConnectionClosedError    anything else, including a dropped socket
    │   ├── MessageTooBig                a fragment over ``max_message_size``
    │   └── Timeout (TimeoutError)       .operation, .seconds
    ├── ProtocolError
    │   ├── LocalProtocolError           we tried something illegal in this state
    │   └── RemoteProtocolError          the server sent bad fragments or an unknown reply
    ├── ServerError (RuntimeError)       an ERROR reply: .text, .traceback, .reqid
    ├── UnknownModelTypes (ValueError)   the document needs model classes not imported
    │                                    here: .types, .packages
    ├── SessionStateError (RuntimeError) e.g. push before connect, use after close
    │   └── ServerOnCallersLoop          a blocking call to a server that runs on
    │                                    the caller's own running loop
    └── DiscoveryError                   listing a server's apps (``discovery``) failed
        ├── NotABokehServer              something answered, not a Bokeh server
        └── AuthenticationRequired       401/403 or a login page: .status

    BokehClientWarning (UserWarning)
    ├── VersionMismatchWarning           the server's bokeh minor version differs
    ├── ChangesDiscardedWarning          a reconnect re-pulled and dropped local changes
    └── SessionRecreatedWarning          a reconnect landed on a new server session

Builtin bases keep old ``except`` clauses working: ``bokeh.client`` raised ``OSError``
for connect failures and ``RuntimeError`` for a lost connection or a failed
pull/push, so ours are instances of those too. Foreign exceptions (aiohttp's) are
translated in exactly one place, ``bokeh_nb_client.transport.websocket``; every
translation chains the original with ``from``.

Nothing in an exception's message ever contains a token, a secret key or a cookie.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationRequired",
    "BokehClientError",
    "BokehClientWarning",
    "ChangesDiscardedWarning",
    "ConnectError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DiscoveryError",
    "HandshakeRejected",
    "LocalProtocolError",
    "MessageTooBig",
    "NotABokehServer",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerError",
    "ServerOnCallersLoop",
    "ServerUnreachable",
    "SessionRecreatedWarning",
    "SessionStateError",
    "Timeout",
    "TransportError",
    "UnknownModelTypes",
    "VersionMismatchWarning",
]


class BokehClientError(Exception):
    """Root of every error this package raises on purpose.

    Catch this to handle any failure of a session; catch a subclass to react to one
    kind. Errors that are programming mistakes by the caller (wrong argument types,
    malformed URLs) are plain ``TypeError``/``ValueError`` instead.
    """


class TransportError(BokehClientError, OSError):
    """The websocket could not be opened, or it failed while in use.

    What to do: check that the server is running and reachable, then open a new
    session (or rely on the session's reconnect policy where one is set).
    """


class ConnectError(TransportError):
    """The socket could not be opened: DNS failure, refused connection, TLS failure.

    Attributes:
        url: the websocket URL that was tried.

    What to do: start the server (``bokeh serve``), or fix the host and port.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class HandshakeRejected(ConnectError):
    """The server answered, but did not accept this client.

    Raised for an HTTP status on the websocket upgrade (``status`` is set: 404 means
    the app path or ``--prefix`` is wrong, 403 means the Origin was refused or, from
    bokeh 3.10's ASGI server, also the token, the auth module or the app path), and for
    a close between the upgrade and the server's ACK (``status`` is None): the
    server rejected the token (bad signature, expired, wrong secret key) or an
    ``--auth-module`` refused the request. The server never says which on the
    wire; its log does.

    Attributes:
        status: the HTTP status of the upgrade response, or None.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message, url=url)
        self.status = status


class ServerUnreachable(ConnectError):
    """A request was made while the session had lost its server and could not reconnect.

    Raised by a request (``pull``, ``push``, ``force_roundtrip``...) made while the
    session reconnects in the background, once it has waited ``request_grace``
    seconds (see ``Reconnect``) without the reconnect succeeding. The session keeps
    reconnecting until ``until``; the request was not sent.

    Attributes:
        since: ``time.time()`` when the connection was lost.
        until: ``time.time()`` when the background reconnect gives up.
        grace: the seconds the request waited for the reconnect.

    What to do: restart the server (or wait for it), then repeat the call; the
    session resynchronises by itself when it reconnects.
    """

    def __init__(
        self, message: str, *, url: str, since: float, until: float, grace: float
    ) -> None:
        super().__init__(message, url=url)
        self.since = since
        self.until = until
        self.grace = grace


class ConnectionClosed(TransportError, RuntimeError):
    """The websocket closed while the session was using it.

    Every request pending at that moment fails with this error.

    Attributes:
        code: the close code (1006 when the socket dropped without a close frame;
            bokeh uses 10000 for "server failed to parse a message" and 10001 for a
            protocol error it detected, 1009 for a message over its size limit).
        reason: the close reason the peer gave, possibly empty.
    """

    def __init__(self, message: str, *, code: int, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """The websocket closed normally (code 1000 or 1001), for example by ``close()``."""


class ConnectionClosedError(ConnectionClosed):
    """The websocket closed abnormally: server killed, network cut, protocol error."""


class MessageTooBig(TransportError):
    """A websocket message (one Bokeh fragment) is larger than the size limit.

    Raised before sending when our own fragment is too large, and when the server
    sent one over our limit. Raise ``max_message_size`` (the ``bokeh serve``
    counterpart is ``--websocket-max-message-size``), or send less data at once.

    Attributes:
        size: the size of the offending fragment in bytes, when known.
        limit: the ``max_message_size`` in force.
    """

    def __init__(self, message: str, *, limit: int, size: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.size = size


class Timeout(TransportError, TimeoutError):
    """An operation did not finish within its timeout.

    Attributes:
        operation: what timed out, for example ``"connect"`` or ``"PULL-DOC-REQ"``.
        seconds: the timeout that was exceeded.

    What to do: check that the server is not frozen or overloaded, or pass a larger
    ``timeout=``. A request that timed out may still be processed by the server.
    """

    def __init__(self, operation: str, seconds: float) -> None:
        super().__init__(f"{operation} did not complete within {seconds:g} s")
        self.operation = operation
        self.seconds = seconds


class ProtocolError(BokehClientError):
    """The Bokeh wire protocol was violated. Not raised itself: see its subclasses."""


class LocalProtocolError(ProtocolError):
    """This client tried something the protocol forbids in its current state.

    Example: sending a request before the server's ACK or after the close. This is
    a bug in the caller of the protocol core, not in the server.
    """


class RemoteProtocolError(ProtocolError):
    """The server sent something that is not valid Bokeh protocol.

    Examples: a binary frame where text is due, JSON that does not parse, a header
    without ``msgtype``, an unknown message type, a reply to no request. The
    connection is closed when this is raised: nothing after a framing error can be
    trusted.
    """


class ServerError(BokehClientError, RuntimeError):
    """The server answered a request with an ERROR message.

    The connection stays open. Attributes:
        text: the server's ``repr`` of its exception.
        traceback: the server-side traceback, or None.
        reqid: the id of the request that failed.
    """

    def __init__(self, message: str, *, text: str, traceback: str | None, reqid: str) -> None:
        super().__init__(message)
        self.text = text
        self.traceback = traceback
        self.reqid = reqid


class SessionStateError(BokehClientError, RuntimeError):
    """The session cannot do this in its current state.

    Examples: using a session after ``close()``, or a blocking call made from the
    engine's own thread (it would wait on itself).
    """


class ServerOnCallersLoop(SessionStateError):
    """A blocking call to a server that runs on the calling thread's own running loop.

    Typical case: a Bokeh or Panel server started in a notebook kernel
    (``show(app)``, ``pn.serve(..., threaded=False)``) and the synchronous API used
    in a cell against it. The kernel's loop cannot run while the cell blocks, so
    the server could never answer; the call fails at once instead of timing out.

    Attributes:
        url: the websocket URL that was to be opened.

    What to do: ``await pull_session_async(...)`` / ``push_session_async(...)``
    (they run on that loop), or start the server in a thread of its own.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class UnknownModelTypes(BokehClientError, ValueError):
    """The server's document uses model types that are not defined in this process.

    Bokeh can only build a model whose Python class has been imported; extension
    packages (Panel, for example) define theirs on import. A ``ValueError``, as
    the ``DeserializationError`` that ``bokeh.client`` raises for the same cause.

    Attributes:
        types: the qualified names of the unknown model types, sorted.
        packages: the top-level packages those names come from, sorted.

    What to do: import the package(s) named (``import panel``) before pulling.
    """

    def __init__(self, message: str, *, types: list[str], packages: list[str]) -> None:
        super().__init__(message)
        self.types = types
        self.packages = packages


class DiscoveryError(BokehClientError):
    """A URL answered, but the apps of a Bokeh server cannot be listed there.

    Raised by ``bokeh_nb_client.discovery`` (the status panel's server browser).
    What to do: check the URL (a Bokeh server's, with its ``--prefix``, or an
    app's), or open a session in code if the server needs credentials.
    """


class NotABokehServer(DiscoveryError):
    """Something answered at the URL, but not like a Bokeh server (the message says what)."""


class AuthenticationRequired(DiscoveryError):
    """The server answered 401/403 or redirected to a login page.

    Browsing sends no credentials; open sessions in code with ``headers=`` or
    ``cookies=`` instead.

    Attributes:
        status: the HTTP status (a redirect's, for a login page).
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BokehClientWarning(UserWarning):
    """Root of the warnings this package issues."""


class VersionMismatchWarning(BokehClientWarning):
    """The server's bokeh has another major.minor version than the client's.

    Documents are (de)serialized with the local bokeh, and the document format
    changed between minor versions (3.8 added ``config``, 3.9 binary buffers), so
    pulls and pushes may fail. Install the server's bokeh version in the client.
    """


class ChangesDiscardedWarning(BokehClientWarning):
    """After a reconnect the session re-pulled the server's document, discarding
    local changes that had not reached the server. The message lists them; the
    session's ``discarded_changes`` keeps them. Use ``reconnect="push"`` when the
    client's document should win instead.
    """


class SessionRecreatedWarning(BokehClientWarning):
    """A reconnect landed on a new server session: the server restarted or expired it.

    The app ran again, so the server's state was reset (and, with a changed app,
    models may be gone). The session re-pulled (or re-pushed) as its policy says;
    ``status.extra["session_recreated"]`` is set. Models you hold that no longer
    exist refuse changes with ``SessionStateError``: look them up again in
    ``session.document``.
    """
