"""The engine (one loop in a daemon thread per process) and a Document's Home thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from bokeh_nb_client.engine import Engine, Home, current_home, get_engine
from bokeh_nb_client.exceptions import ServerError, SessionStateError

T = TypeVar("T")

WAIT = 5.0


def in_new_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread (no loop, its own Home) and return its result."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(WAIT * 2)


def engine_thread_ident() -> int:
    async def ident() -> int:
        return threading.get_ident()

    return get_engine().submit(ident()).result(WAIT)


# -- the engine --------------------------------------------------------------------------


def test_one_engine_per_process_even_when_first_used_concurrently() -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        engines = list(pool.map(lambda _: get_engine(), range(32)))
    assert all(engine is engines[0] for engine in engines)
    assert get_engine() is engines[0]
    names = [t.name for t in threading.enumerate() if t.name == "bokeh-nb-client-engine"]
    assert names == ["bokeh-nb-client-engine"]
    engine_thread = next(t for t in threading.enumerate() if t.name == "bokeh-nb-client-engine")
    assert engine_thread.daemon


def test_submit_runs_on_the_engine_thread_and_returns_the_result() -> None:
    engine = get_engine()

    async def work() -> tuple[int, bool]:
        await asyncio.sleep(0)
        return threading.get_ident(), engine.in_engine_thread()

    ident, inside = engine.submit(work()).result(WAIT)
    assert inside
    assert ident != threading.get_ident()
    assert not engine.in_engine_thread()
    assert engine.loop.is_running()


def test_exceptions_cross_threads_intact() -> None:
    raised: list[BaseException] = []

    async def fail() -> None:
        try:
            raise ValueError("root cause")
        except ValueError as cause:
            error = ServerError("boom", text="t", traceback=None, reqid="c1")
            raised.append(error)
            raise error from cause

    with pytest.raises(ServerError) as info:
        get_engine().submit(fail()).result(WAIT)
    assert info.value is raised[0]
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "root cause"

    # The same through Home.wait on a thread with a private loop.
    def via_home() -> BaseException:
        raised.clear()
        home = current_home()
        try:
            home.wait(get_engine().submit(fail()))
        except ServerError as exc:
            return exc
        raise AssertionError("no exception")

    error = in_new_thread(via_home)
    assert error is raised[0]
    assert isinstance(error.__cause__, ValueError)


def test_blocking_call_from_the_engine_thread_is_refused() -> None:
    engine = get_engine()
    created: list[object] = []

    async def inner() -> None:
        raise AssertionError("must never run")

    async def outer() -> None:
        coro = inner()
        created.append(coro)
        engine.submit(coro)

    with pytest.raises(SessionStateError, match="engine thread"):
        engine.submit(outer()).result(WAIT)
    # The refused coroutine was closed, so it never warns "never awaited".
    assert getattr(created[0], "cr_frame", "missing") is None


def test_sync_session_method_on_the_engine_thread_is_refused() -> None:
    from bokeh_nb_client import ClientSession

    async def misuse() -> None:
        session = ClientSession(websocket_url="ws://127.0.0.1:9/ws")
        session.connect()

    with pytest.raises(SessionStateError):
        get_engine().submit(misuse()).result(WAIT)


def test_shutdown_cancels_tasks_and_stops_the_thread() -> None:
    engine = Engine()
    cancelled: concurrent.futures.Future[bool] = concurrent.futures.Future()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set_result(True)
            raise

    future = engine.submit(forever())
    engine.call_soon(lambda: None)
    engine.shutdown(timeout=WAIT)
    assert cancelled.result(0) is True
    assert future.cancelled()
    assert not engine.loop.is_running()
    engine.shutdown()  # idempotent
    engine.loop.close()


# -- Home --------------------------------------------------------------------------------


def test_current_home_is_per_thread_and_per_loop() -> None:
    def private() -> tuple[Home, Home]:
        return current_home(), current_home()

    first, again = in_new_thread(private)
    assert first is again
    assert first.owns_loop
    assert not first.loop.is_running()
    other, _ = in_new_thread(private)
    assert other is not first

    async def running() -> Home:
        home = current_home()
        assert home is current_home()
        assert home.loop is asyncio.get_running_loop()
        return home

    home = asyncio.run(running())
    assert not home.owns_loop


def test_wait_with_a_private_loop_runs_posted_work_and_timers() -> None:
    def scenario() -> tuple[list[int], int]:
        home = current_home()
        assert home.owns_loop
        ran_on: list[int] = []
        posted_ran: concurrent.futures.Future[None] = concurrent.futures.Future()
        timer_ran: concurrent.futures.Future[None] = concurrent.futures.Future()
        home.loop.call_later(0.01, lambda: timer_ran.set_result(None))

        def posted(i: int) -> None:
            ran_on.append(threading.get_ident())
            if i == 9:
                posted_ran.set_result(None)

        async def engine_side() -> int:
            for i in range(10):
                home.post(lambda i=i: posted(i))  # type: ignore[misc]
            # Only completes if the home thread runs posted work and its timers
            # while it waits.
            await asyncio.wait_for(asyncio.wrap_future(posted_ran), WAIT)
            await asyncio.wait_for(asyncio.wrap_future(timer_ran), WAIT)
            return 42

        assert home.wait(get_engine().submit(engine_side())) == 42
        return ran_on, threading.get_ident()

    ran_on, home_thread = in_new_thread(scenario)
    assert ran_on == [home_thread] * 10


def test_wait_with_a_running_loop_applies_posted_work_while_waiting() -> None:
    order: list[str] = []

    def blocking_call(home: Home) -> int:
        # A synchronous call made from a coroutine, as in a kernel cell.
        async def engine_side() -> int:
            ran: concurrent.futures.Future[int] = concurrent.futures.Future()

            def on_home() -> None:
                order.append("posted")
                ran.set_result(threading.get_ident())

            home.post(on_home)
            return await asyncio.wait_for(asyncio.wrap_future(ran), WAIT)

        result = home.wait(get_engine().submit(engine_side()))
        order.append("returned")
        return result

    async def cell() -> tuple[int, int]:
        home = current_home()
        assert not home.owns_loop
        return blocking_call(home), threading.get_ident()

    ran_on, home_thread = asyncio.run(cell())
    assert ran_on == home_thread
    assert order == ["posted", "returned"]


def test_posted_work_runs_on_the_running_home_loop_without_a_blocking_call() -> None:
    async def main() -> list[int]:
        home = current_home()
        ran: list[int] = []
        done = asyncio.get_running_loop().create_future()

        def record(i: int) -> None:
            ran.append(i)
            if i == 4 and not done.done():
                done.set_result(None)

        async def engine_side() -> None:
            for i in range(5):
                home.post(lambda i=i: record(i))  # type: ignore[misc]

        await asyncio.wrap_future(get_engine().submit(engine_side()))
        await asyncio.wait_for(done, WAIT)
        return ran

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_posted_work_keeps_running_after_a_posted_function_raised() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[object] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))
        home = current_home()
        ran = loop.create_future()

        def fail() -> None:
            raise ValueError("a posted function failed")

        home.post(fail)
        home.post(lambda: None)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(errors) == 1
        home.post(lambda: ran.set_result(None))
        await asyncio.wait_for(ran, 1.0)

    asyncio.run(main())


def test_wait_from_another_thread_simply_waits() -> None:
    home = in_new_thread(current_home)
    future: concurrent.futures.Future[str] = concurrent.futures.Future()
    threading.Timer(0.01, lambda: future.set_result("done")).start()
    assert home.wait(future) == "done"


@pytest.mark.parametrize("loop_kind", ["private", "running"])
def test_keyboard_interrupt_while_waiting_cancels_the_operation(loop_kind: str) -> None:
    cancelled: concurrent.futures.Future[bool] = concurrent.futures.Future()

    def interrupt() -> None:
        raise KeyboardInterrupt

    def scenario() -> concurrent.futures.Future[None]:
        home = current_home()

        async def engine_side() -> None:
            home.post(interrupt)  # stands in for Ctrl-C arriving during the wait
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set_result(True)
                raise

        future = get_engine().submit(engine_side())
        with pytest.raises(KeyboardInterrupt):
            home.wait(future)
        return future

    if loop_kind == "private":
        future = in_new_thread(scenario)
    else:

        async def cell() -> concurrent.futures.Future[None]:
            return scenario()

        future = asyncio.run(cell())
    assert future.cancelled()
    assert cancelled.result(WAIT) is True
