"""The one error tree of bokeh_nb_client. No other module defines exceptions.

::

    BokehClientError
    ├── TransportError (OSError)
    │   ├── ConnectError                 cannot open the socket: DNS, refused, TLS
    │   │   └── HandshakeRejected        HTTP status on upgrade (404 app, 403 origin),
    │   │                                or a close between the upgrade and ACK
    │   ├── ConnectionClosed (RuntimeError)   .code, .reason
    │   │   ├── ConnectionClosedOK       a normal close (1000/1001)
    │   │   └── ConnectionClosedError    anything else, including a dropped socket
    │   ├── MessageTooBig                a fragment over ``max_message_size``
    │   └── Timeout (TimeoutError)       .operation, .seconds
    ├── ProtocolError
    │   ├── LocalProtocolError           we tried something illegal in this state
    │   └── RemoteProtocolError          the server sent bad fragments or an unknown reply
    ├── ServerError (RuntimeError)       an ERROR reply: .text, .traceback, .reqid
    ├── SessionStateError (RuntimeError) e.g. push before connect, use after close
    └── DiscoveryError                   listing a server's apps (``discovery``) failed
        ├── NotABokehServer              something answered, not a Bokeh server
        └── AuthenticationRequired       401/403 or a login page: .status

    BokehClientWarning (UserWarning)
    ├── VersionMismatchWarning           the server's bokeh minor version differs
    └── ChangesDiscardedWarning          a reconnect re-pulled and dropped local changes

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
    "SessionStateError",
    "Timeout",
    "TransportError",
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
    the app path or ``--prefix`` is wrong, 403 means the Origin was refused), and for
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
