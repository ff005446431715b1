"""Test doubles: a scripted fake Bokeh server, spoken over any peer.

* :class:`ServerEnd` speaks the Bokeh framing (``wire.encode``/``Assembler``) over a
  *peer*: the ``MemoryPeer`` of a ``memory_pair``, or :class:`AiohttpServerPeer`, the
  server side of a real websocket on 127.0.0.1.
* :class:`FakeBokehServer` answers like ``bokeh serve`` does, from a real bokeh
  ``Document`` it owns: ACK, PULL-DOC-REQ (``Document.to_json()``), SERVER-INFO-REQ,
  PATCH-DOC (applied to its document; OK, or ERROR when it fails or when
  ``reject_patches`` is set), PUSH-DOC (``replace_with_json``; the resulting
  RootRemoved/RootAdded/TitleChanged are echoed before the OK, as bokeh 3.9 does).
  Tests inject server-side changes with :meth:`FakeBokehServer.change` (bokeh encodes
  them) or raw PATCH-DOC contents with :meth:`FakeBokehServer.send_patch`.
* :func:`hosted` serves a FakeBokehServer over an in-process aiohttp websocket server
  on the running loop; :class:`ServerThread` runs one in a thread of its own, for
  tests whose own thread blocks (the synchronous facade).

The fake server records every client message in ``received`` and lets tests wait
for traffic with :meth:`FakeBokehServer.wait_for` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

import bokeh
from aiohttp import WSCloseCode, web
from bokeh.core.json_encoder import serialize_json
from bokeh.core.serialization import Buffer, Serialized, Serializer
from bokeh.document import Document
from bokeh.document.events import DocumentChangedEvent, DocumentPatchedEvent
from ws_server import AiohttpServerPeer, serve_websocket

from bokeh_nb_client.exceptions import ConnectionClosed
from bokeh_nb_client.protocol import MsgType, WireMessage, counter_ids, make_header
from bokeh_nb_client.protocol.wire import Assembler, Fragment, JsonText, encode
from bokeh_nb_client.transport.memory import MemoryTransport, memory_pair

T = TypeVar("T")

WAIT = 5.0
"""Seconds any wait in these helpers allows before the test fails."""


class Peer(Protocol):
    """The server end of a websocket, as a fake server drives it."""

    async def send(self, fragments: Sequence[Fragment | memoryview]) -> None: ...

    async def receive(self) -> Fragment: ...

    async def close(self, code: int = 1000, reason: str = "closed") -> None: ...


class ServerEnd:
    """Bokeh framing over a peer: whole messages in and out, server-style ids."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self._assembler = Assembler()
        self._ids = counter_ids("p")

    async def receive_message(self) -> WireMessage:
        """The next complete client message; ``ConnectionClosed`` at the end."""
        while True:
            message = self._assembler.feed(await self.peer.receive())
            if message is not None:
                return message

    async def send_message(
        self,
        msgtype: MsgType | str,
        content: Any = None,
        *,
        reqid: str | None = None,
        buffers: Sequence[tuple[str, bytes]] = (),
    ) -> str:
        """Send one message; returns its msgid. ``content`` None means ``{}``."""
        msgid = self._ids()
        header = make_header(MsgType(msgtype), msgid, reqid)
        await self.peer.send(encode(header, {}, {} if content is None else content, buffers))
        return msgid

    async def ack(self) -> None:
        await self.send_message(MsgType.ACK)

    async def reply(
        self,
        request: WireMessage,
        msgtype: MsgType,
        content: Any = None,
        buffers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        await self.send_message(msgtype, content, reqid=request.msgid, buffers=buffers)

    async def error(self, request: WireMessage, text: str, tb: str | None = None) -> None:
        await self.reply(request, MsgType.ERROR, {"text": text, "traceback": tb})


def _bokeh_json(obj: Any, buffers: Sequence[Buffer] = ()) -> JsonText:
    """JSON as bokeh writes a message content: ``buffers`` as references, on every version.

    (Before 3.9, ``serialize_json`` of a bare tree would inline them as base64.)
    """
    return JsonText(serialize_json(Serialized(obj, list(buffers)), pretty=False))


PUSH_DOC_CARRIES_BUFFERS = isinstance(Document().to_json(), Serialized)
"""True from bokeh 3.9: ``Document.to_json()`` returns a ``Serialized`` and the
server's PUSH-DOC handler reads the message's binary buffers. Before 3.9 it
returns the bare tree, and the handler deserializes ``content["doc"]`` alone."""


def _document_payload(doc: Document) -> tuple[Any, list[Buffer]]:
    """``doc`` as the installed bokeh's server sends it in a PULL-DOC-REPLY."""
    serialized: Any = doc.to_json()
    if isinstance(serialized, Serialized):
        return serialized.content, list(serialized.buffers or [])
    return serialized, []  # bokeh < 3.9: the arrays are inlined as base64 text


def _buffer_pairs(buffers: Sequence[Buffer]) -> list[tuple[str, bytes]]:
    return [(str(buffer.id), buffer.to_bytes()) for buffer in buffers]


def _serialized(content: Any, buffers: Sequence[tuple[str, bytes]]) -> Serialized[Any]:
    return Serialized(content, [Buffer(bid, data) for bid, data in buffers])  # type: ignore[arg-type]


class FakeBokehServer:
    """A scripted stand-in for ``bokeh serve``, one document, any number of clients.

    Attributes:
        doc: the server's document (a real bokeh Document).
        received: every complete message any client sent, in arrival order.
        reject_patches: when set, every client PATCH-DOC is answered with ERROR
            carrying this text (and not applied).
        errors: msgtype -> text: answer every request of that type with ERROR.
        echo_push: send the RootRemoved/RootAdded/TitleChanged PATCH-DOC that a
            PUSH-DOC causes to the pusher before the OK (bokeh 3.9 does).
        send_ack: send ACK when a client connects (False: a test scripts it).
        before_reply: awaited with (end, request) before each reply, to inject
            traffic in front of it (or to hold the reply back).
    """

    def __init__(self, doc: Document | None = None, *, version: str = bokeh.__version__) -> None:
        self.doc = doc if doc is not None else Document()
        self.version = version
        self.received: list[WireMessage] = []
        self.reject_patches: str | None = None
        self.errors: dict[MsgType, str] = {}
        self.echo_push = True
        self.send_ack = True
        self.before_reply: Callable[[ServerEnd, WireMessage], Awaitable[None]] | None = None
        self.ends: list[ServerEnd] = []
        self.tokens: list[str] = []
        self.close_codes: list[int | None] = []
        self.patch_failures: list[str] = []
        self._changed: asyncio.Condition | None = None
        # Everything the client sent so far is synced on the server (bokeh's
        # pull marks the document's models as synced the same way).
        self.doc.models.flush_synced()

    # -- serving ----------------------------------------------------------------

    async def serve(self, peer: Peer) -> None:
        """Speak to one client until it goes away."""
        end = ServerEnd(peer)
        self.ends.append(end)
        try:
            if self.send_ack:
                await end.ack()
            while True:
                try:
                    message = await end.receive_message()
                except ConnectionClosed as exc:
                    self.close_codes.append(exc.code)
                    return
                self.received.append(message)
                await self._notify()
                with contextlib.suppress(ConnectionClosed):
                    await self._answer(end, message)
        finally:
            self.ends.remove(end)
            await self._notify()

    async def _answer(self, end: ServerEnd, request: WireMessage) -> None:
        msgtype = MsgType(request.msgtype)
        if msgtype in self.errors:
            await self._before(end, request)
            await end.error(request, self.errors[msgtype])
        elif msgtype is MsgType.PULL_DOC_REQ:
            content, buffers = _document_payload(self.doc)
            await self._before(end, request)
            await end.reply(
                request,
                MsgType.PULL_DOC_REPLY,
                _bokeh_json({"doc": content}, buffers),
                _buffer_pairs(buffers),
            )
        elif msgtype is MsgType.SERVER_INFO_REQ:
            await self._before(end, request)
            info = {"version_info": {"bokeh": self.version, "server": self.version}}
            await end.reply(request, MsgType.SERVER_INFO_REPLY, info)
        elif msgtype is MsgType.PATCH_DOC:
            error = self.reject_patches or self._apply(request)
            await self._before(end, request)
            if error is not None:
                await end.error(request, error, "Traceback (most recent call last): ...")
            else:
                await end.reply(request, MsgType.OK)
        elif msgtype is MsgType.PUSH_DOC:
            # As the installed bokeh's push_doc.push_to_document does.
            doc_json: Any = (
                _serialized(request.content["doc"], request.buffers)
                if PUSH_DOC_CARRIES_BUFFERS
                else request.content["doc"]
            )
            events = self._capture(lambda: self.doc.replace_with_json(doc_json))
            if self.echo_push and events:
                content, buffers = self._encode(events)
                await end.send_message(MsgType.PATCH_DOC, content, buffers=buffers)
            await self._before(end, request)
            await end.reply(request, MsgType.OK)
        else:
            await end.error(request, f"ProtocolError('unexpected {msgtype}')")

    async def _before(self, end: ServerEnd, request: WireMessage) -> None:
        if self.before_reply is not None:
            await self.before_reply(end, request)

    def _apply(self, request: WireMessage) -> str | None:
        try:
            setter: Any = self  # bokeh types it as its own session classes
            self.doc.apply_json_patch(_serialized(request.content, request.buffers), setter=setter)
        except Exception as exc:
            self.patch_failures.append(traceback.format_exc())
            return repr(exc)
        return None

    # -- server-side changes ---------------------------------------------------------

    def _capture(self, change: Callable[[], object]) -> list[DocumentPatchedEvent]:
        events: list[DocumentPatchedEvent] = []

        def record(event: DocumentChangedEvent) -> None:
            if isinstance(event, DocumentPatchedEvent):
                events.append(event)

        self.doc.on_change(record)
        try:
            change()
        finally:
            self.doc.remove_on_change(record)
        return events

    def _encode(
        self, events: Sequence[DocumentPatchedEvent]
    ) -> tuple[JsonText, list[tuple[str, bytes]]]:
        # As bokeh.protocol.messages.patch_doc.create does.
        serializer = Serializer(references=self.doc.models.synced_references)
        encoded = serializer.encode(list(events))
        self.doc.models.flush_synced(lambda model: not serializer.has_ref(model))
        return _bokeh_json({"events": encoded}, serializer.buffers), _buffer_pairs(
            serializer.buffers
        )

    async def change(self, fn: Callable[[Document], object]) -> None:
        """Run ``fn(doc)`` on the server document and send its events as one PATCH-DOC."""
        events = self._capture(lambda: fn(self.doc))
        assert events, "the change produced no document events"
        content, buffers = self._encode(events)
        await self.send_patch(content, buffers)

    async def send_patch(self, content: Any, buffers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send one unsolicited PATCH-DOC with ``content`` to every client."""
        for end in list(self.ends):
            await end.send_message(MsgType.PATCH_DOC, content, buffers=buffers)

    # -- observation -------------------------------------------------------------------

    def of_type(self, msgtype: MsgType) -> list[WireMessage]:
        """The received messages of one type."""
        return [m for m in self.received if m.msgtype == msgtype]

    def patch_events(self) -> list[dict[str, Any]]:
        """Every event of every received PATCH-DOC, in order."""
        return [event for m in self.of_type(MsgType.PATCH_DOC) for event in m.content["events"]]

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` holds (checked on every message and disconnect)."""
        condition = self._condition()
        async with asyncio.timeout(timeout), condition:
            await condition.wait_for(predicate)

    async def wait_for_type(self, msgtype: MsgType, count: int = 1) -> list[WireMessage]:
        """Wait until ``count`` messages of ``msgtype`` have arrived; return them all."""
        await self.wait_for(lambda: len(self.of_type(msgtype)) >= count)
        return self.of_type(msgtype)


@contextlib.asynccontextmanager
async def hosted(server: FakeBokehServer, path: str = "/app/ws") -> AsyncIterator[str]:
    """Serve ``server`` at ws://127.0.0.1:PORT``path`` on the running loop; yield the URL."""

    async def on_connect(request: web.Request, peer: AiohttpServerPeer) -> None:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        server.tokens.append(offered.split(",", 1)[1].strip() if "," in offered else "")
        await server.serve(peer)

    async with serve_websocket(on_connect, path, close_code=WSCloseCode.GOING_AWAY) as url:
        yield url


class InMemory:
    """The session's transport seam, served by a ``FakeBokehServer`` in memory.

    Pass ``InMemory(server).open`` as ``AsyncClientSession(transport_factory=...)``:
    each connect makes a ``memory_pair`` and serves its peer with ``server`` in a
    task owned here (``aclose`` awaits them). No socket, no patching.
    """

    def __init__(self, server: FakeBokehServer) -> None:
        self.server = server
        self.tokens: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def open(
        self,
        url: str,
        *,
        token: str,
        max_message_size: int,
        timeout: float,
        headers: Any = None,
        cookies: Any = None,
        ssl: Any = None,
    ) -> MemoryTransport:
        transport, peer = memory_pair(url, max_message_size=max_message_size)
        self.tokens.append(token)
        self._tasks.append(asyncio.get_running_loop().create_task(self.server.serve(peer)))
        return transport

    async def aclose(self) -> None:
        """Wait for every served connection to end (the client closed them)."""
        await asyncio.gather(*self._tasks)


class ServerThread:
    """A FakeBokehServer hosted on its own loop in a daemon thread.

    Use as a context manager; ``call`` runs a coroutine on the server's loop and
    returns its result (from any thread but the server's).
    """

    def __init__(self, server: FakeBokehServer) -> None:
        self.server = server
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._exit: contextlib.AsyncExitStack | None = None

    def __enter__(self) -> ServerThread:
        self._thread.start()

        async def start() -> str:
            self._exit = contextlib.AsyncExitStack()
            return await self._exit.enter_async_context(hosted(self.server))

        self.url = self.call(start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._exit is not None
        self.call(self._exit.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)
        self._loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the server's loop; return its future."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return self.submit(coro).result(timeout)
