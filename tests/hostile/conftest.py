"""Fixtures of the hostile-input tests: the fake server, and leak checks after each test.

* ``fake_server`` (session): one :class:`~hostile_server.FakeServer` on its own
  thread and loop; tests register their own scripts on it, so they never share
  a connection.
* ``server`` (function): that server, with a check at teardown that no script a
  test registered crashed (a broken script would make a test pass for the wrong
  reason).
* ``no_leaks`` (autouse): after every test, no task started during it is still
  running on the sync API's engine loop and no thread started during it is alive.
* ``frozen_heap``: for the fuzz tests, keeps the garbage collector from rescanning
  the session's large heap (bokeh documents, servers) thousands of times.
* ``no_open_http_sessions`` (autouse, per module, since it scans the heap): no
  aiohttp ClientSession opened by the module's tests is left unclosed.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from hostile_checks import engine_tasks, open_aiohttp_sessions, settle_engine_tasks
from hostile_server import FakeServer


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def server(fake_server: FakeServer) -> Iterator[FakeServer]:
    before = set(fake_server._endpoints)
    yield fake_server
    created = [e for k, e in list(fake_server._endpoints.items()) if k not in before]
    errors = [err for endpoint in created for err in endpoint.script_errors()]
    for endpoint in created:
        fake_server.forget(endpoint)
    assert not errors, f"a fake-server script crashed: {errors!r}"


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    threads_before = set(threading.enumerate())
    tasks_before = engine_tasks()
    yield
    leaked_tasks = settle_engine_tasks(tasks_before)
    assert not leaked_tasks, f"tasks still running on the engine loop: {leaked_tasks}"
    new_threads = [t for t in threading.enumerate() if t not in threads_before]
    allowed = ("bokeh-nb-client-engine", "hostile-fake-server")
    for thread in new_threads:
        if not thread.name.startswith(allowed):
            thread.join(2.0)
    alive = [t.name for t in new_threads if t.is_alive() and not t.name.startswith(allowed)]
    assert not alive, f"threads started by the test are still alive: {alive}"


@pytest.fixture(scope="module", autouse=True)
def no_open_http_sessions() -> Iterator[None]:
    before = open_aiohttp_sessions()
    yield
    unclosed = open_aiohttp_sessions() - before
    assert not unclosed, f"{len(unclosed)} aiohttp ClientSession(s) left open by this module"


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
