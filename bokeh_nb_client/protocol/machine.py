"""The client side of one Bokeh websocket connection, as a sans-I/O state machine.

:class:`ClientProtocol` knows what may be sent and received when, and pairs each
reply with its request; it never touches a socket. The driver feeds it every
received fragment (``receive_fragment``), asks it for the fragments of each request
(``send_request``) and writes those, and reports the websocket's close
(``receive_close``).

States (PROTOCOL.md §5.1)::

    AWAITING_ACK --ACK--> OPEN --send_close--> CLOSING --receive_close--> CLOSED
          |                 |                                               ^
          +-----------------+---- receive_close, or a RemoteProtocolError --+

Invariants:

* Nothing is sent before the server's ACK, nor after ``send_close``.
* Every request is answered at most once: its msgid stays in :attr:`pending`
  until its reply, an ERROR, or the close.
* The only messages the server sends unprompted are one ACK and PATCH-DOCs
  without a ``reqid`` (PROTOCOL.md §3); anything else that answers no request is a
  protocol violation.
* The first :class:`~bokeh_nb_client.exceptions.RemoteProtocolError` moves the
  machine to CLOSED and is kept in :attr:`ClientProtocol.failure`; the driver must
  then close the websocket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from types import MappingProxyType
from typing import Any

from ..exceptions import LocalProtocolError, RemoteProtocolError
from .events import (
    Acknowledged,
    ConnectionTerminated,
    ErrorReplyReceived,
    Event,
    PatchReceived,
    ReplyReceived,
)
from .messages import CLIENT_REQUESTS, REPLY_TYPE, IdFactory, MsgType, counter_ids, make_header
from .wire import Assembler, Fragment, OutFragment, WireMessage, encode

__all__ = ["ClientProtocol", "State"]


class State(Enum):
    """The connection state of a :class:`ClientProtocol`."""

    AWAITING_ACK = "awaiting ACK"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class ClientProtocol:
    """State and request bookkeeping for one connection to a Bokeh server session.

    Create one per websocket, right after the upgrade succeeded. The machine is
    not thread-safe: call it from one thread (the connection's reader and writer
    on one event loop).

    Args:
        id_factory: makes the msgid of each request; defaults to
            :func:`~bokeh_nb_client.protocol.messages.counter_ids` (``c1``, ``c2``,
            ...). Inject one for deterministic tests.
    """

    __slots__ = (
        "_abandoned",
        "_acknowledged",
        "_assembler",
        "_failure",
        "_id_factory",
        "_pending",
        "_state",
    )

    def __init__(self, id_factory: IdFactory | None = None) -> None:
        self._id_factory: IdFactory = id_factory if id_factory is not None else counter_ids()
        self._state = State.AWAITING_ACK
        # send_close() may come before the ACK; the ACK is still legal then.
        self._acknowledged = False
        self._assembler = Assembler()
        self._pending: dict[str, MsgType] = {}
        self._abandoned: dict[str, MsgType] = {}
        self._failure: RemoteProtocolError | None = None

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def pending(self) -> Mapping[str, MsgType]:
        """A read-only live view of the unanswered requests: msgid -> request type,
        in the order they were sent. Abandoned requests are not included."""
        return MappingProxyType(self._pending)

    @property
    def failure(self) -> RemoteProtocolError | None:
        """The protocol violation by the server that closed the machine, if any."""
        return self._failure

    # -- input from the server ---------------------------------------------------

    def receive_fragment(self, fragment: Fragment) -> Event | None:
        """Feed one websocket message received from the server.

        Args:
            fragment: a text frame as ``str`` or a binary frame as ``bytes``.

        Returns:
            The event for the message this fragment completed, or None when the
            message is still partial, or when it answered an abandoned request
            (that reply is dropped).

        Raises:
            RemoteProtocolError: the server broke the framing rules or sent a message
                that is illegal now: anything before ACK other than ACK, a second
                ACK, a reply to no request (or of the wrong type), a malformed ERROR,
                a request type, or an unknown msgtype. The machine is then CLOSED;
                close the websocket (bokeh uses code 10001 for such errors) and
                fail the pending requests.
            LocalProtocolError: the machine is already CLOSED.
        """
        if self._state is State.CLOSED:
            raise LocalProtocolError(
                "no fragment can be received: the connection is closed"
            ) from self._failure
        try:
            message = self._assembler.feed(fragment)
            return None if message is None else self._dispatch(message)
        except RemoteProtocolError as exc:
            self._failure = exc
            self._state = State.CLOSED
            raise

    def _dispatch(self, message: WireMessage) -> Event | None:
        msgtype = message.msgtype
        if not self._acknowledged:
            if msgtype != MsgType.ACK:
                raise RemoteProtocolError(f"received {msgtype} before ACK")
            self._acknowledged = True
            if self._state is State.AWAITING_ACK:
                self._state = State.OPEN
            return Acknowledged(message)

        try:
            known = MsgType(msgtype)
        except ValueError:
            raise RemoteProtocolError(f"received unknown msgtype {msgtype!r}") from None
        if known is MsgType.ACK:
            raise RemoteProtocolError("received a second ACK")
        if known in CLIENT_REQUESTS and known is not MsgType.PATCH_DOC:
            raise RemoteProtocolError(f"received {known}, which only a client may send")

        reqid = message.reqid
        if reqid is None:
            if known is MsgType.PATCH_DOC:
                return PatchReceived(message)
            raise RemoteProtocolError(f"received {known} without a reqid")

        if reqid in self._pending:
            request_type = self._pending[reqid]
            event = self._reply_event(reqid, request_type, known, message)
            del self._pending[reqid]
            return event
        if reqid in self._abandoned:
            # Validate as for a live request, then drop it: the caller gave up.
            self._reply_event(reqid, self._abandoned[reqid], known, message)
            del self._abandoned[reqid]
            return None
        raise RemoteProtocolError(
            f"unsolicited reply: received {known} with reqid {reqid!r}, "
            "which answers no request sent on this connection"
        )

    @staticmethod
    def _reply_event(
        reqid: str, request_type: MsgType, msgtype: MsgType, message: WireMessage
    ) -> ReplyReceived | ErrorReplyReceived:
        if msgtype is MsgType.ERROR:
            content = message.content
            text = content.get("text") if isinstance(content, dict) else None
            traceback = content.get("traceback") if isinstance(content, dict) else None
            if not isinstance(text, str) or not (traceback is None or isinstance(traceback, str)):
                raise RemoteProtocolError(
                    f"the ERROR reply to {request_type} {reqid!r} is malformed: its content "
                    'must be {"text": str, "traceback": str or null}'
                )
            return ErrorReplyReceived(reqid, request_type, text, traceback)
        expected = REPLY_TYPE[request_type]
        if msgtype is not expected:
            raise RemoteProtocolError(
                f"received {msgtype} in reply to {request_type} {reqid!r}; "
                f"expected {expected} or ERROR"
            )
        return ReplyReceived(reqid, request_type, message)

    def receive_close(self, code: int, reason: str) -> ConnectionTerminated:
        """Report that the websocket closed (by either side, or by a dropped socket).

        Legal in every state, including after a failure; the machine becomes CLOSED.

        Args:
            code: the close code (use 1006 for a socket that dropped without a
                close frame).
            reason: the close reason, possibly empty.

        Returns:
            The termination, listing the requests still pending (their ids are
            forgotten: the caller must fail each one). A second call lists none.
        """
        self._state = State.CLOSED
        pending = tuple(self._pending)
        self._pending.clear()
        self._abandoned.clear()
        return ConnectionTerminated(code, reason, pending)

    # -- input from the caller ---------------------------------------------------

    def send_request(
        self,
        msgtype: MsgType,
        content: Any,
        *,
        buffers: Sequence[tuple[str, bytes | memoryview]] = (),
        metadata: Any = None,
    ) -> tuple[str, list[OutFragment]]:
        """Start a request and get the fragments to send for it.

        The request is pending from now on; write all the returned fragments, in
        order and without interleaving another message's, before any other message.

        Args:
            msgtype: PULL-DOC-REQ, PUSH-DOC, PATCH-DOC or SERVER-INFO-REQ.
            content: the JSON-compatible content (or a
                :class:`~bokeh_nb_client.protocol.wire.JsonText`).
            buffers: ``(id, payload)`` pairs referenced from the content.
            metadata: the metadata; None is sent as ``{}``.

        Returns:
            ``(msgid, fragments)``: the id that the reply's ``reqid`` will carry, and
            the fragments from :func:`~bokeh_nb_client.protocol.wire.encode`.

        Raises:
            LocalProtocolError: the server has not sent its ACK yet, the connection
                is closing or closed, ``msgtype`` is not a client request, or the
                id factory repeated an id still in use.
            ValueError, TypeError: the content or metadata cannot be encoded (see
                ``encode``); the request is then not pending.
        """
        if self._state is State.AWAITING_ACK:
            raise LocalProtocolError("nothing may be sent before the server's ACK")
        if self._state is not State.OPEN:
            raise LocalProtocolError(
                f"cannot send {msgtype}: the connection is {self._state.value}"
            )
        request_type = _as_request_type(msgtype)
        msgid = self._id_factory()
        if msgid in self._pending or msgid in self._abandoned:
            raise LocalProtocolError(f"the id factory returned {msgid!r}, which is still in use")
        fragments = encode(
            make_header(request_type, msgid),
            {} if metadata is None else metadata,
            content,
            buffers,
        )
        self._pending[msgid] = request_type
        return msgid, fragments

    def abandon_request(self, msgid: str) -> None:
        """Give up on a pending request (its caller timed out or was cancelled).

        Its reply, if it ever comes, is then dropped silently instead of being
        treated as unsolicited. Unknown or already answered ids are ignored, since
        a reply may race with the give-up.
        """
        request_type = self._pending.pop(msgid, None)
        if request_type is not None:
            self._abandoned[msgid] = request_type

    def send_close(self) -> None:
        """Record that we are closing the websocket: nothing more may be sent, but
        replies and patches still in flight are received. No-op once CLOSING or
        CLOSED."""
        if self._state in (State.AWAITING_ACK, State.OPEN):
            self._state = State.CLOSING


def _as_request_type(msgtype: MsgType | str) -> MsgType:
    try:
        known = MsgType(msgtype)
    except ValueError:
        raise LocalProtocolError(f"{msgtype!r} is not a Bokeh msgtype") from None
    if known not in CLIENT_REQUESTS:
        raise LocalProtocolError(
            f"{known} cannot be sent by a client; requests are "
            + ", ".join(sorted(CLIENT_REQUESTS))
        )
    return known
