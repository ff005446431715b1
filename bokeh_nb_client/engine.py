"""Threads and loops: the package-wide engine loop, and a Document's home thread.

This is the only module that starts a thread or an event loop.

The model (see ``ARCHITECTURE.md``):

* Inside a Jupyter cell the kernel's asyncio loop is already running on the same
  thread, and it does not run while a synchronous cell runs. A synchronous call
  therefore can never wait on that loop. The synchronous API instead runs every
  session's I/O on one **engine** loop, in a daemon thread started on first use, and
  the calling thread waits on a ``concurrent.futures.Future``. The engine hosts I/O
  only; it never touches a Document.
* A Document has one **home** thread, the thread that opened the session. Changes
  made there are serialized there. Incoming patches and client-side document
  callbacks run there: on the thread's running loop when it has one (the kernel's,
  between cells and during ``await``), and otherwise on a private loop of the
  thread that runs only inside the session's blocking calls and
  ``loop_until_closed()``, as ``bokeh.client`` does in scripts. That private loop is
  never started while another loop runs on the thread, so nothing is nested.
* A blocking call made on the home thread also applies, while it waits, the work
  the engine posted for that thread, so that ``force_roundtrip()`` returns with the
  server's replies already applied, even inside a cell.
* ``io_loop=`` (``bokeh.client``'s argument): a loop that is not running becomes
  the calling thread's home loop for that session (``home_for``), so blocking calls
  run it while they wait and a ``bokeh.server.server.Server`` created in this
  process on it keeps answering, as with ``bokeh.client``. A blocking call that
  could never be answered because the server listens on the caller's own running
  loop (a server started in a kernel) is detected from that loop's listening
  sockets (``loop_serves``) and refused at once by the sync facade.

Rejected alternatives: ``nest_asyncio`` (re-enters a running loop, breaks
invariants of asyncio and of the kernel), ``run_until_complete`` on a running loop
(raises), and sessions that connect lazily and fill themselves in later (every
attribute becomes "maybe"; failures surface far from their cause).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .exceptions import SessionStateError

__all__ = [
    "Engine",
    "Home",
    "current_home",
    "finish_on_stopped_loop",
    "get_engine",
    "home_for",
    "loop_serves",
    "resolve_io_loop",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest run of posted work (incoming patches) before the home loop gets control back.
DRAIN_SLICE = 0.05


class Engine:
    """One asyncio loop in a daemon thread, shared by every synchronous session."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="bokeh-nb-client-engine", daemon=True
        )
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The engine's event loop (running in the engine thread)."""
        return self._loop

    def in_engine_thread(self) -> bool:
        """True when called from the engine's own thread."""
        return threading.get_ident() == self._thread.ident

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the engine loop; return a future for its result.

        Raises:
            SessionStateError: when called from the engine thread itself, where
                waiting on the future would deadlock.
        """
        if self.in_engine_thread():
            coro.close()
            raise SessionStateError(
                "a blocking bokeh_nb_client call was made on the engine thread; "
                "use the async API (AsyncClientSession) from coroutines instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Schedule ``fn`` on the engine loop from any thread."""
        self._loop.call_soon_threadsafe(fn)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel the engine's remaining tasks and stop its loop (at exit)."""
        if not self._loop.is_running():
            return

        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """Return the package-wide engine, starting it on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
            atexit.register(_engine.shutdown)
        return _engine


class Home:
    """The home thread of a Document: where it is changed and patched.

    ``post`` may be called from any thread (the engine posts incoming patches);
    the posted functions run in order on the home thread, from the home loop or
    from a blocking ``wait`` made on the home thread, whichever comes first.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, owns_loop: bool) -> None:
        self.loop = loop
        self.owns_loop = owns_loop
        self.thread_id = threading.get_ident()
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._lock = threading.Lock()
        self._drain_scheduled = False
        self._wake = threading.Event()

    def on_home_thread(self) -> bool:
        """True when called from the home thread."""
        return threading.get_ident() == self.thread_id

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the home thread, after everything posted before it."""
        with self._lock:
            self._inbox.append(fn)
            schedule = not self._drain_scheduled
            self._drain_scheduled = True
        self._wake.set()
        if schedule and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        """Run posted functions for one slice of time. Must be called on the home thread.

        Runs what was posted, in order, for at most ``DRAIN_SLICE`` seconds, then
        schedules the rest on the home loop and returns, so the loop's other work
        (the kernel, other tasks, timers) runs between slices however fast work is
        posted. An exception from a posted function propagates to the caller of
        ``drain`` (the loop's exception handler, or the blocking call that
        drained); the functions after it stay queued for the next drain.
        """
        deadline = time.perf_counter() + DRAIN_SLICE
        while True:
            with self._lock:
                if not self._inbox:
                    self._drain_scheduled = False
                    return
                if time.perf_counter() > deadline and not self.loop.is_closed():
                    # Out of time: the rest runs in a later slice (a drain is
                    # still scheduled, so post() need not schedule another).
                    self.loop.call_soon_threadsafe(self.drain)
                    return
                fn = self._inbox.popleft()
            try:
                fn()
            except BaseException:
                # Keep the inbox alive: the remaining work needs a drain scheduled.
                with self._lock:
                    self._drain_scheduled = bool(self._inbox)
                    reschedule = self._drain_scheduled
                if reschedule and not self.loop.is_closed():
                    self.loop.call_soon_threadsafe(self.drain)
                raise

    def wait(self, future: concurrent.futures.Future[T]) -> T:
        """Block until ``future`` is done and return its result, doing home work meanwhile.

        On the home thread with a private loop, that loop runs (timers and
        client-side document callbacks included). On the home thread while its own
        loop is running (a kernel cell), posted work is applied as it arrives. On
        any other thread this simply waits.

        A ``KeyboardInterrupt`` while waiting cancels the operation.
        """
        try:
            if not self.on_home_thread():
                return future.result()
            if self.owns_loop and not _loop_running_here():
                return self.loop.run_until_complete(asyncio.wrap_future(future, loop=self.loop))
            future.add_done_callback(lambda _: self._wake.set())
            while True:
                self._wake.clear()
                self.drain()
                if future.done():
                    break
                with self._lock:
                    idle = not self._inbox
                if idle:
                    self._wake.wait()
            self.drain()
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise


def finish_on_stopped_loop(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], timeout: float
) -> bool:
    """Run ``coro`` to its end on ``loop`` if that loop is stopped (at interpreter exit).

    Used to close sessions whose loop (a kernel's, or a script's own) stopped
    without closing them. Never nests: a loop that is running (anywhere) or
    closed, or a thread with a running loop, is left alone and ``coro`` is
    discarded. Returns whether it ran.

    Raises:
        whatever ``coro`` raises, and ``TimeoutError`` after ``timeout`` seconds.
    """
    if loop.is_running() or loop.is_closed() or _loop_running_here():
        coro.close()
        return False
    loop.run_until_complete(asyncio.wait_for(coro, timeout))
    return True


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_homes = threading.local()


def current_home() -> Home:
    """Return the Home for the calling thread, creating it on first use.

    With a running loop on this thread (a kernel, or ``asyncio.run``), the Home
    uses that loop; otherwise it uses a private loop that runs only inside
    blocking calls.
    """
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        homes: dict[int, Home] = getattr(_homes, "by_loop", {})
        _homes.by_loop = homes
        home = homes.get(id(running))
        if home is None or home.loop is not running:
            home = Home(running, owns_loop=False)
            homes[id(running)] = home
        return home
    private: Home | None = getattr(_homes, "private", None)
    if private is None or private.loop.is_closed():
        private = Home(asyncio.new_event_loop(), owns_loop=True)
        _homes.private = private
    return private


def resolve_io_loop(io_loop: object | None) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop behind ``io_loop``: an asyncio loop, or a tornado ``IOLoop``.

    Raises:
        TypeError: ``io_loop`` is neither (``bokeh.client`` takes a tornado IOLoop).
    """
    if io_loop is None or isinstance(io_loop, asyncio.AbstractEventLoop):
        return io_loop
    inner = getattr(io_loop, "asyncio_loop", None)  # tornado's IOLoop on asyncio
    if isinstance(inner, asyncio.AbstractEventLoop):
        return inner
    raise TypeError(
        f"io_loop must be a tornado IOLoop or an asyncio event loop, got {type(io_loop).__name__}"
    )


def home_for(io_loop: object | None) -> Home:
    """The Home for the calling thread and ``io_loop`` (``bokeh.client``'s argument).

    With an ``io_loop`` that is not running (a ``bokeh.server.server.Server``
    created in this process on it, as ``bokeh.client``'s own tests and many scripts
    do), that loop becomes the thread's home loop for the session: blocking calls
    run it while they wait, so the in-process server answers, and the session's
    document callbacks run on it, as with ``bokeh.client``. A running ``io_loop``
    (or none) changes nothing: the thread's usual Home is used.

    Raises:
        TypeError: ``io_loop`` is not an event loop.
        ValueError: ``io_loop`` is closed.
        SessionStateError: ``io_loop`` is not running and another loop runs on
            this thread, so it could never be run here (that would nest loops).
    """
    loop = resolve_io_loop(io_loop)
    if loop is None or loop.is_running():
        return current_home()
    if loop.is_closed():
        raise ValueError("io_loop is closed")
    if _loop_running_here():
        raise SessionStateError(
            "io_loop is not running, and this thread already runs another event loop, "
            "so io_loop cannot be run while a blocking call waits (loops do not nest). "
            "Use the async API (pull_session_async) on the running loop, or run io_loop."
        )
    homes: dict[int, Home] = getattr(_homes, "by_io_loop", {})
    _homes.by_io_loop = homes
    for key, stale in list(homes.items()):
        if stale.loop.is_closed():
            del homes[key]  # do not keep closed loops (one per test server) alive
    home = homes.get(id(loop))
    if home is None or home.loop is not loop:
        home = Home(loop, owns_loop=True)
        homes[id(loop)] = home
    return home


def loop_serves(loop: asyncio.AbstractEventLoop, host: str, port: int) -> bool:
    """Whether ``loop`` itself accepts the TCP connections for ``host``:``port``.

    True when a listening socket registered with ``loop`` is bound to ``port`` on
    a wildcard address, on loopback (for a loopback ``host``), or on one of the
    addresses ``host`` names. A blocking call on the thread that runs ``loop`` could
    then never be answered: the server cannot run while the call waits.

    Works for selector loops (the default loop, the kernel's); for other loops
    (uvloop, proactor) it cannot see the sockets and returns False.
    """
    selector = getattr(loop, "_selector", None)  # BaseSelectorEventLoop's selector
    if not isinstance(selector, selectors.BaseSelector):
        return False
    wanted = _addresses_of(host)
    for key in list(selector.get_map().values()):
        bound = _listening_address(key.fd)
        if bound is None or bound[1] != port:
            continue
        address = ipaddress.ip_address(bound[0].split("%", 1)[0])
        if address.is_unspecified or address in wanted:
            return True
        if address.is_loopback and any(a.is_loopback for a in wanted):
            return True
    return False


def _addresses_of(host: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The IP addresses ``host`` names (a literal, ``localhost``, or a local lookup)."""
    name = host.strip("[]")
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None  # a name, not an address
    if literal is not None:
        return {literal}
    if name.lower() == "localhost":
        return {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()  # unresolvable: the connect reports it
    return {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}


def _listening_address(fd: int) -> tuple[str, int] | None:
    """(address, port) of ``fd`` if it is a listening TCP socket, else None."""
    try:
        sock = socket.socket(fileno=fd)  # reads the socket's family and type
    except OSError:
        return None  # not a socket (a pipe, an eventfd)
    try:
        if sock.type != socket.SOCK_STREAM or sock.family not in (
            socket.AF_INET,
            socket.AF_INET6,
        ):
            return None
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return None
            name = sock.getsockname()
        except OSError:
            return None  # closed under us, or no such option here: not a listener we know
        return str(name[0]), int(name[1])
    finally:
        sock.detach()  # the fd belongs to its owner: never close it here
