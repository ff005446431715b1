"""CallbackScheduler: client-side document callbacks on the home loop."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bokeh_nb_client._bokeh import CallbackSpec
from bokeh_nb_client.callbacks import CallbackScheduler

WAIT = 5.0
PERIOD = 0.01


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    async def checked() -> None:
        await main()
        await settle()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == [], f"tasks left running: {leftover}"

    asyncio.run(checked())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def periodic(fn: Callable[[], Any], seconds: float = PERIOD) -> CallbackSpec:
    return CallbackSpec("periodic", seconds, fn)


def test_periodic_callback_never_overlaps_itself() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        running = 0
        most = 0
        starts: list[float] = []
        fourth = loop.create_future()

        async def slow() -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            starts.append(loop.time())
            await asyncio.sleep(PERIOD * 3)  # longer than the period
            running -= 1
            if len(starts) == 4 and not fourth.done():
                fourth.set_result(None)

        scheduler.add("slow", periodic(slow))
        await asyncio.wait_for(fourth, WAIT)
        scheduler.stop()
        assert most == 1
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(gap >= PERIOD * 3 * 0.9 for gap in gaps), gaps

    run(main)


def test_coroutine_callbacks_are_awaited() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        finished = loop.create_future()

        async def work() -> None:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            finished.set_result("after awaits")

        scheduler.add("t", CallbackSpec("timeout", 0.0, work))
        assert await asyncio.wait_for(finished, WAIT) == "after awaits"

    run(main)


def test_exceptions_are_logged_and_a_periodic_callback_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        calls = 0
        third = loop.create_future()

        def flaky() -> None:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise ValueError(f"failure {calls}")
            if not third.done():
                third.set_result(None)

        with caplog.at_level(logging.ERROR, logger="bokeh_nb_client.callbacks"):
            scheduler.add("flaky", periodic(flaky))
            await asyncio.wait_for(third, WAIT)
            scheduler.stop()
        failures = [r for r in caplog.records if r.exc_info is not None]
        assert len(failures) == 2
        first_exc = failures[0].exc_info
        assert first_exc is not None
        assert isinstance(first_exc[1], ValueError)

    run(main)


@pytest.mark.parametrize(("kind", "delay"), [("timeout", 0.02), ("next_tick", 0.0)])
def test_one_shot_callbacks_run_once_after_their_delay(kind: str, delay: float) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        calls: list[float] = []
        ran = loop.create_future()
        added = loop.time()

        def once() -> None:
            calls.append(loop.time())
            ran.set_result(None)

        spec = CallbackSpec("timeout" if kind == "timeout" else "next_tick", delay, once)
        scheduler.add("once", spec)
        assert len(scheduler) == 1
        await asyncio.wait_for(ran, WAIT)
        await settle()
        assert len(calls) == 1
        assert calls[0] - added >= delay * 0.9
        assert len(scheduler) == 0  # its task is gone: it cannot run again

    run(main)


def test_stop_cancels_every_callback_including_one_mid_run() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        started = loop.create_future()
        cancelled_mid_run = loop.create_future()
        calls: list[str] = []

        async def long_running() -> None:
            started.set_result(None)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled_mid_run.set_result(True)
                raise

        scheduler.add("mid-run", CallbackSpec("next_tick", 0.0, long_running))
        scheduler.add("periodic", periodic(lambda: calls.append("p"), seconds=3600))
        scheduler.add("timeout", CallbackSpec("timeout", 3600, lambda: calls.append("t")))
        await asyncio.wait_for(started, WAIT)
        assert len(scheduler) == 3
        scheduler.stop()
        assert len(scheduler) == 0
        assert await asyncio.wait_for(cancelled_mid_run, WAIT) is True
        assert calls == []

    run(main)


def test_remove_cancels_only_that_callback_and_add_ignores_duplicates() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        kept_ran = loop.create_future()
        calls: list[str] = []
        scheduler.add("gone", CallbackSpec("timeout", 0.01, lambda: calls.append("gone")))
        scheduler.add("gone", CallbackSpec("timeout", 0.0, lambda: calls.append("dup")))
        scheduler.add("kept", CallbackSpec("timeout", 0.02, lambda: kept_ran.set_result(None)))
        assert len(scheduler) == 2
        scheduler.remove("gone")
        scheduler.remove("never added")
        await asyncio.wait_for(kept_ran, WAIT)
        assert calls == []

    run(main)


def test_callback_removing_itself_finishes_its_run_and_stops() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        finished = loop.create_future()
        runs = 0

        async def self_removing() -> None:
            nonlocal runs
            runs += 1
            scheduler.remove("me")  # as bokeh does for one-shot callbacks
            await asyncio.sleep(0)
            finished.set_result("completed")

        scheduler.add("me", periodic(self_removing, seconds=0.0))
        assert await asyncio.wait_for(finished, WAIT) == "completed"
        await settle()
        assert runs == 1

    run(main)


def test_callback_added_from_another_thread_wakes_the_idle_loop() -> None:
    """Issue 11 item 3: bokeh's add_next_tick_callback from a worker thread.

    The loop is idle (no timer that would wake it) while a worker thread schedules
    a next-tick callback; the callback must run on the loop's thread without any
    other event waking the loop. ``WAIT`` is a hang guard.
    """
    import threading
    import time

    async def main() -> None:
        loop = asyncio.get_running_loop()
        scheduler = CallbackScheduler(loop)
        ran = threading.Event()
        threads: list[int] = []

        def callback() -> None:
            threads.append(threading.get_ident())
            ran.set()

        def schedule() -> None:
            # Let the loop settle into its idle wait first: that is where the
            # kernel's loop sits between cells, and where an unwoken loop stays.
            # (Not synchronisation: the assertion holds however long this is.)
            time.sleep(0.2)
            scheduler.add("tick", CallbackSpec("next_tick", 0.0, callback))

        worker = threading.Thread(target=schedule)
        worker.start()
        # Wait without arming a timer on this loop: only the scheduling can wake it.
        waiter = loop.run_in_executor(None, ran.wait, WAIT)
        assert await waiter, "the callback did not run: the loop was not woken"
        worker.join()
        assert threads == [threading.get_ident()]

    run(main)
