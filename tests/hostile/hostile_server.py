"""A scriptable, misbehaving stand-in for ``bokeh serve``, for hostile-input tests.

:class:`FakeServer` runs an ``aiohttp.web`` application on 127.0.0.1 at a free port,
on an event loop of its own in a daemon thread, so that the synchronous client API
(which blocks the test's thread while its engine thread does the I/O) can talk to
it. Each test registers a *script* (``async def script(peer)``) and gets back an
:class:`Endpoint` with the URLs that run it. A script decides, frame by frame, what
the server sends; it can ACK and then misbehave in any way a real server might,
or in ways no real server does.

Besides the scripted websocket route, the server offers fixed misbehaviours:

* ``/html/ws`` answers the upgrade with HTTP 200 and an HTML page;
* ``/noproto/ws`` upgrades without selecting the ``bokeh`` subprotocol;
* ``/status/<code>/ws`` answers with that HTTP status;
* a second, raw TCP listener (:attr:`FakeServer.silent_port`) accepts connections
  and never answers anything.

Everything the server observes is recorded in thread-safe :class:`ConnRecord`
values (client close code, messages received, whether the socket is gone), so
tests can wait for server-side facts with events instead of sleeping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import bokeh
import numpy as np
from aiohttp import WSMsgType, web
from bokeh.core.json_encoder import serialize_json
from bokeh.core.serialization import Buffer, Serialized
from bokeh.document import Document
from bokeh.models import ColumnDataSource
from bokeh.models.widgets import Div

from bokeh_nb_client.protocol import MsgType, WireMessage, make_header
from bokeh_nb_client.protocol.wire import Assembler, JsonText, OutFragment, encode

__all__ = [
    "ClientGone",
    "ConnRecord",
    "Endpoint",
    "FakeServer",
    "Peer",
    "Script",
    "ack_frames",
    "doc_content",
    "make_server_doc",
    "message_frames",
    "patch_frames",
    "pull_reply_frames",
    "server_info_content",
]

T = TypeVar("T")

WAIT = 5.0
"""Seconds any server-side wait allows before giving up."""

_msgids = itertools.count(1)


class ClientGone(Exception):
    """The client closed the websocket (or the socket dropped) while a script waited."""


# -- frame builders (pure) -----------------------------------------------------


def _server_msgid() -> str:
    return f"s{next(_msgids)}"


def message_frames(
    msgtype: str,
    content: Any = None,
    *,
    reqid: str | None = None,
    buffers: Sequence[tuple[str, bytes]] = (),
    metadata: Any = None,
) -> list[OutFragment]:
    """The valid fragments of one server message (``content`` None means ``{}``)."""
    header = make_header(MsgType(msgtype), _server_msgid(), reqid)
    return encode(
        header, {} if metadata is None else metadata, {} if content is None else content, buffers
    )


def ack_frames() -> list[OutFragment]:
    """The three fragments of an ACK."""
    return message_frames(MsgType.ACK)


def make_server_doc(text: str = "hello") -> Document:
    """The fake server's document: a Div ``div`` and a CDS ``src`` with a binary column."""
    doc = Document()
    doc.title = "hostile"
    doc.add_root(Div(name="div", text=text))
    doc.add_root(
        ColumnDataSource(name="src", data={"x": np.arange(4, dtype="float64"), "y": [1, 2, 3, 4]})
    )
    return doc


def doc_content(doc: Document) -> tuple[JsonText, list[tuple[str, bytes]]]:
    """The PULL-DOC-REPLY content of ``doc`` as JSON text, and its binary buffers.

    Arrays travel as binary buffers, as bokeh 3.9 sends them, whatever bokeh is
    installed: before 3.9 ``Document.to_json()`` returns the bare tree (with its
    deferred buffers still in it) instead of a ``Serialized``.
    """
    serialized: Any = doc.to_json()
    tree = serialized.content if isinstance(serialized, Serialized) else serialized
    buffers = _buffers_in(tree)
    text = serialize_json(Serialized({"doc": tree}, buffers), pretty=False)
    return JsonText(text), [(str(buffer.id), buffer.to_bytes()) for buffer in buffers]


def _buffers_in(node: Any) -> list[Buffer]:
    if isinstance(node, Buffer):
        return [node]
    if isinstance(node, list | tuple):
        return [buffer for item in node for buffer in _buffers_in(item)]
    if isinstance(node, dict):
        return [buffer for value in node.values() for buffer in _buffers_in(value)]
    return []


def pull_reply_frames(doc: Document, reqid: str) -> list[OutFragment]:
    """A valid PULL-DOC-REPLY carrying ``doc``."""
    content, buffers = doc_content(doc)
    return message_frames(MsgType.PULL_DOC_REPLY, content, reqid=reqid, buffers=buffers)


def server_info_content() -> dict[str, Any]:
    """A SERVER-INFO-REPLY content naming this process's bokeh version."""
    return {"version_info": {"bokeh": bokeh.__version__, "server": bokeh.__version__}}


def patch_frames(
    events: list[dict[str, Any]], buffers: Sequence[tuple[str, bytes]] = ()
) -> list[OutFragment]:
    """An unsolicited server PATCH-DOC with ``events`` (header carries num_buffers)."""
    header = make_header(MsgType.PATCH_DOC, _server_msgid())
    header["num_buffers"] = len(buffers)
    return encode(header, {}, {"events": events}, buffers)


# -- what the server observed ------------------------------------------------------


@dataclass
class ConnRecord:
    """What the server saw on one websocket connection. Read it from any thread."""

    path: str
    offered_protocols: str
    messages: list[WireMessage] = field(default_factory=list)
    client_close_code: int | None = None
    """The status code of the client's close frame (1005: a frame without one);
    None when the client dropped the socket without a close frame."""
    script_error: BaseException | None = None
    close_seen: threading.Event = field(default_factory=threading.Event)
    """Set when the client's close frame arrived (whether or not it was answered)."""
    gone: threading.Event = field(default_factory=threading.Event)
    """Set once the socket is finished on the server side (closed or dropped)."""
    _cv: threading.Condition = field(default_factory=threading.Condition)
    _async_waiters: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = field(
        default_factory=list
    )

    def msgtypes(self) -> list[str]:
        """The msgtype of every client message so far, in order."""
        with self._cv:
            return [m.msgtype for m in self.messages]

    def wait_for_message(self, msgtype: str, count: int = 1, timeout: float = WAIT) -> bool:
        """Block until ``count`` client messages of ``msgtype`` have arrived.

        Returns False on timeout or when the socket ended short of that count.
        """

        def seen() -> int:
            return sum(1 for m in self.messages if m.msgtype == msgtype)

        with self._cv:
            self._cv.wait_for(lambda: seen() >= count or self.gone.is_set(), timeout)
            return seen() >= count

    def wait_gone(self, timeout: float = WAIT) -> bool:
        """Block until the server saw the socket end."""
        return self.gone.wait(timeout)

    async def wait_gone_async(self, timeout: float = WAIT) -> bool:
        """``wait_gone`` for a coroutine on another loop, without blocking that loop."""
        return await self._wait_async(self.gone.is_set, timeout)

    async def wait_for_message_async(
        self, msgtype: str, count: int = 1, timeout: float = WAIT
    ) -> bool:
        """``wait_for_message`` for a coroutine on another loop."""
        return await self._wait_async(
            lambda: sum(1 for m in self.messages if m.msgtype == msgtype) >= count, timeout
        )

    async def _wait_async(self, predicate: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def poll() -> None:
            with self._cv:
                if not done.done() and predicate():
                    done.set_result(True)

        entry = (loop, poll)
        with self._cv:
            self._async_waiters.append(entry)
        poll()
        try:
            return await asyncio.wait_for(done, timeout)
        except TimeoutError:
            return False
        finally:
            with self._cv:
                self._async_waiters.remove(entry)

    def _poke_async_waiters(self) -> None:
        with self._cv:
            waiters = list(self._async_waiters)
        for loop, poll in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(poll)

    def _add_message(self, message: WireMessage) -> None:
        with self._cv:
            self.messages.append(message)
            self._cv.notify_all()
        self._poke_async_waiters()

    def _mark_gone(self) -> None:
        self.gone.set()
        with self._cv:
            self._cv.notify_all()
        self._poke_async_waiters()


# -- the server end of one websocket -----------------------------------------------


class Peer:
    """The server side of one client websocket, as a script drives it (server loop).

    A reader task assembles everything the client sends into messages (the client
    is not under test for what it sends, only for what it does with what it
    receives); a script awaits them with :meth:`next_message`/:meth:`expect`.
    """

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: ConnRecord,
        doc: Document,
        *,
        read: bool,
    ) -> None:
        self.request = request
        self.ws = ws
        self.record = record
        self.doc = doc
        self._inbox: asyncio.Queue[WireMessage | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = (
            asyncio.get_running_loop().create_task(self._read()) if read else None
        )

    async def _read(self) -> None:
        assembler = Assembler()
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    message = assembler.feed(msg.data)
                    if message is not None:
                        self.record._add_message(message)
                        self._inbox.put_nowait(message)
                    continue
                if msg.type is WSMsgType.CLOSE:
                    self.record.client_close_code = int(msg.data) if msg.data else 1005
                    self.record.close_seen.set()
                break
        finally:
            self._inbox.put_nowait(None)

    async def send(self, fragments: Iterable[str | bytes | memoryview]) -> None:
        """Write fragments verbatim; a str is a text frame, anything else binary.

        Writing to a client that already left is not an error (hostile scripts keep
        talking); the frames are simply lost.
        """
        try:
            for fragment in fragments:
                if isinstance(fragment, str):
                    await self.ws.send_str(fragment)
                else:
                    await self.ws.send_bytes(bytes(fragment))
        except (ConnectionError, RuntimeError):
            pass

    async def ack(self) -> None:
        await self.send(ack_frames())

    async def next_message(self, timeout: float = WAIT) -> WireMessage:
        """The next complete client message. Raises ClientGone once the client left."""
        if self._reader is None:
            raise RuntimeError("this endpoint does not read what the client sends")
        message = await asyncio.wait_for(self._inbox.get(), timeout)
        if message is None:
            self._inbox.put_nowait(None)  # stay at end of stream for later calls
            raise ClientGone
        return message

    async def expect(self, msgtype: str, timeout: float = WAIT) -> WireMessage:
        """The next client message that is a ``msgtype`` (PATCH-DOCs before it are
        answered OK)."""
        while True:
            message = await self.next_message(timeout)
            if message.msgtype == msgtype:
                return message
            await self.answer(message)

    async def answer(self, message: WireMessage) -> None:
        """Answer a client request as a well-behaved bokeh server would."""
        kind = message.msgtype
        if kind == MsgType.SERVER_INFO_REQ:
            await self.send(
                message_frames(
                    MsgType.SERVER_INFO_REPLY, server_info_content(), reqid=message.msgid
                )
            )
        elif kind == MsgType.PULL_DOC_REQ:
            await self.send(pull_reply_frames(self.doc, message.msgid))
        elif kind in (MsgType.PATCH_DOC, MsgType.PUSH_DOC):
            await self.send(message_frames(MsgType.OK, reqid=message.msgid))

    async def handshake(self) -> None:
        """ACK, then answer the SERVER-INFO-REQ every session sends right after it."""
        await self.ack()
        await self.answer(await self.expect(MsgType.SERVER_INFO_REQ))

    async def serve(self) -> None:
        """Answer every request normally until the client leaves."""
        with contextlib.suppress(ClientGone):
            while True:
                await self.answer(await self.next_message(timeout=3600))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame with ``code`` (any value, RFC range or not)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())

    async def close_without_status(self) -> None:
        """Send a close frame with an empty payload, as bokeh does to reject a token."""
        await self.send_frame(b"", WSMsgType.CLOSE)

    async def send_frame(self, payload: bytes, opcode: int) -> None:
        """Write one raw websocket frame, valid or not (any opcode, any payload)."""
        writer = self.ws._writer  # aiohttp has no public API for invalid frames
        assert writer is not None
        await writer.send_frame(payload, opcode)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def wait_client_gone(self, timeout: float = WAIT) -> None:
        """Wait until the client closed its side (answering nothing meanwhile)."""
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class Endpoint:
    """One registered script and the connections that ran it."""

    server: FakeServer
    key: str
    script: Script
    read: bool
    answer_close: bool
    doc: Document
    records: list[ConnRecord] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let connections that withhold the answer to the client's close frame finish."""
        self.server._loop.call_soon_threadsafe(self._release.set)

    @property
    def http_url(self) -> str:
        """The app's http URL (what ``pull_session(url=...)`` takes)."""
        return f"http://127.0.0.1:{self.server.port}/s/{self.key}"

    @property
    def ws_url(self) -> str:
        """The app's websocket URL."""
        return f"ws://127.0.0.1:{self.server.port}/s/{self.key}/ws"

    @property
    def record(self) -> ConnRecord:
        """The first (usually the only) connection's record."""
        assert self.connected.wait(WAIT), "the client never connected"
        return self.records[0]

    def script_errors(self) -> list[BaseException]:
        return [r.script_error for r in self.records if r.script_error is not None]


# -- the server ------------------------------------------------------------------


class FakeServer:
    """The fake Bokeh server, on its own loop in a daemon thread. Start with :meth:`start`."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="hostile-fake-server", daemon=True)
        self._endpoints: dict[str, Endpoint] = {}
        self._keys = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._silent: asyncio.Server | None = None
        self._silent_writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.silent_port = 0
        self.http_requests = 0
        """Every HTTP request the aiohttp app received (the upgrade is one)."""
        self.silent_accepted = 0
        self.silent_closed = threading.Semaphore(0)
        """Released once per silent connection the client closed."""

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        """Run ``coro`` on the server loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> FakeServer:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/s/{key}/ws", self._scripted)
        app.router.add_get("/html/ws", self._html)
        app.router.add_get("/noproto/ws", self._noproto)
        app.router.add_get("/status/{code}/ws", self._status)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._silent = await asyncio.start_server(self._hold_silently, "127.0.0.1", 0)
        self.silent_port = self._silent.sockets[0].getsockname()[1]

    def stop(self) -> None:
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT)

    async def _stop(self) -> None:
        for writer in self._silent_writers:
            writer.close()
        if self._silent is not None:
            self._silent.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- registration ---------------------------------------------------------------

    def endpoint(
        self,
        script: Script,
        *,
        read: bool = True,
        answer_close: bool = True,
        doc: Document | None = None,
    ) -> Endpoint:
        """Register ``script``; every websocket opened on the returned URLs runs it.

        Args:
            script: the coroutine function run for each connection.
            read: False to never read from the socket (not even the client's close).
            answer_close: False to read the client's close frame but not answer it
                until :meth:`Endpoint.release` (the client's close handshake hangs).
            doc: the document the default answers serve (a fresh one if None).
        """
        key = f"e{next(self._keys)}"
        endpoint = Endpoint(
            self, key, script, read, answer_close, doc if doc is not None else make_server_doc()
        )
        self._endpoints[key] = endpoint
        return endpoint

    def forget(self, endpoint: Endpoint) -> None:
        self._endpoints.pop(endpoint.key, None)

    @property
    def html_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/html/ws"

    @property
    def noproto_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/noproto/ws"

    def status_ws_url(self, code: int) -> str:
        return f"ws://127.0.0.1:{self.port}/status/{code}/ws"

    @property
    def silent_ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.silent_port}/ws"

    # -- handlers ------------------------------------------------------------------

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.http_requests += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            return await handler(request)
        finally:
            self._handlers.discard(task)

    async def _scripted(self, request: web.Request) -> web.StreamResponse:
        endpoint = self._endpoints.get(request.match_info["key"])
        if endpoint is None:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse(
            protocols=("bokeh",), max_msg_size=0, autoclose=endpoint.answer_close
        )
        await ws.prepare(request)
        record = ConnRecord(request.path, request.headers.get("Sec-WebSocket-Protocol", ""))
        endpoint.records.append(record)
        endpoint.connected.set()
        peer = Peer(request, ws, record, endpoint.doc, read=endpoint.read)
        try:
            await endpoint.script(peer)
            # The script is done: stay until the client leaves, answering nothing.
            if peer._reader is not None:
                await peer._reader
            if not endpoint.answer_close:
                await asyncio.wait_for(endpoint._release.wait(), 30)
        except ClientGone:
            pass
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            record.script_error = exc
        finally:
            if peer._reader is not None:
                peer._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await peer._reader
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()
            record._mark_gone()
        return ws

    async def _html(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text="<!DOCTYPE html><html><body>not a websocket</body></html>",
            content_type="text/html",
        )

    async def _noproto(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()  # selects no subprotocol
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def _hold_silently(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Accept the TCP connection, read whatever comes, never answer."""
        self.silent_accepted += 1
        self._silent_writers.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            self.silent_closed.release()
            writer.close()
