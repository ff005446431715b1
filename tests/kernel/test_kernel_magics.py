"""Every ``%bokeh_*`` magic in a real kernel against a real ``bokeh serve``.

One kernel serves the module; ``magics`` loads the extension into it and points
``BokehClient.default_url`` at the test server. Each test opens what it needs
under its own names. The unload test comes last and checks that unloading closes
the magics' sessions and removes the magics.
"""

from __future__ import annotations

import pytest
from bokeh_server import BokehServer, find_free_port
from kernel_driver import CellResult, KernelDriver

from bokeh_nb_client import pull_session

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def magics(kernel: KernelDriver, bokeh_server: BokehServer) -> KernelDriver:
    """The module's kernel with the extension loaded and configured for the test server."""
    kernel.execute(
        "%load_ext bokeh_nb_client\n"
        f'%config BokehClient.default_url = "{bokeh_server.http_url()}/"\n'
        '%config BokehClient.browser = "none"\n'
        "%config BokehClient.timeout = 10\n"
    )
    return kernel


def _usage_error(result: CellResult) -> str:
    """The one-line UsageError text a cell showed (IPython prints it, no traceback)."""
    assert result.status == "error", result
    text = result.stderr + (result.error or {}).get("evalue", "")
    assert "Traceback" not in text
    return text


def test_pull_binds_the_session_and_shows_its_status(magics: KernelDriver) -> None:
    result = magics.execute("%bokeh_pull basic")
    status = result.text()
    assert "Bokeh session 'session'" in status
    assert "/basic" in status
    assert "5: div (Div), btn (Button)" in status
    assert "connected" in status
    assert "bnc-status" in result.text("text/html")
    check = magics.execute("print(type(session).__name__, session.connected)")
    assert check.stdout.split() == ["ClientSession", "True"]


def test_pull_with_name_session_id_and_arguments(
    magics: KernelDriver, bokeh_server: BokehServer
) -> None:
    magics.execute("%bokeh_pull args --as a1 --session-id magic-args-1 --arg color=red --arg n=3")
    result = magics.execute("print(a1.id); print(a1.document.get_model_by_name('args').text)")
    session_id, args_json = result.stdout.splitlines()
    assert session_id == "magic-args-1"
    assert args_json == '{"color": ["red"], "n": ["3"]}'
    magics.execute("%bokeh_close a1")


def test_pull_of_a_full_url_and_rebinding_closes_the_previous_session(
    magics: KernelDriver, bokeh_server: BokehServer
) -> None:
    url = bokeh_server.http_url("basic")
    magics.execute(f"%bokeh_pull {url} --as twice\nfirst = twice")
    magics.execute(f"%bokeh_pull {url} --as twice")
    result = magics.execute("print(first.status.state.value, twice.status.state.value)")
    assert result.stdout.split() == ["closed", "connected"]
    magics.execute("%bokeh_close twice")


def test_push_a_model_a_document_a_session_and_curdoc(
    magics: KernelDriver, bokeh_server: BokehServer
) -> None:
    sink_url = bokeh_server.http_url("sink")
    magics.execute(
        "from bokeh.models import Div\n"
        "from bokeh.document import Document\n"
        "pushed_div = Div(text='pushed from a magic', name='pushed')\n"
        f"%bokeh_push pushed_div {sink_url} --as p1 --session-id magic-push-1\n"
    )
    observer = pull_session(session_id="magic-push-1", url=sink_url)
    try:
        roots = observer.document.roots
        assert [(r.name, r.text) for r in roots] == [("pushed", "pushed from a magic")]
        # Changes to the pushed model now flow to the server.
        magics.execute("pushed_div.text = 'changed after the push'\np1.force_roundtrip()")
        observer.force_roundtrip()
        assert observer.document.get_model_by_name("pushed").text == "changed after the push"
    finally:
        observer.close()

    magics.execute(
        "doc2 = Document()\n"
        "doc2.add_root(Div(text='a document', name='docroot'))\n"
        f"%bokeh_push doc2 {sink_url} --as p2\n"
        "p2.document.get_model_by_name('docroot').text = 'edited locally'\n"
        "%bokeh_push p2\n"  # a ClientSession: its document is pushed to its own session
    )
    result = magics.execute("print(p2.document is doc2, p2.connected)")
    assert result.stdout.split() == ["True", "True"]

    result = magics.execute(
        "from bokeh.io import curdoc\n"
        "curdoc().clear()\n"
        "curdoc().add_root(Div(text='from curdoc', name='cd'))\n"
        f"%bokeh_push {sink_url} --as p3\n"  # a lone URL: EXPR defaults to curdoc()
        "print(p3.document is curdoc())\n"
    )
    assert result.stdout.strip() == "True"
    magics.execute("%bokeh_close p1\n%bokeh_close p2\n%bokeh_close p3")


def test_push_rejects_what_it_cannot_push(magics: KernelDriver) -> None:
    error = _usage_error(magics.execute("%bokeh_push 42", allow_error=True))
    assert "expected a Document, a model or layout, or a ClientSession" in error
    error = _usage_error(magics.execute("%bokeh_push undefined_name", allow_error=True))
    assert "cannot evaluate 'undefined_name'" in error


def test_show_displays_a_live_inline_view(magics: KernelDriver) -> None:
    magics.execute("%bokeh_pull basic --as shown")
    session_id = magics.execute("print(shown.id)").stdout.strip()
    result = magics.execute("%bokeh_show shown")
    html = result.text("text/html")
    assert "bnc-view" in html
    assert "/basic/autoload.js" in html
    assert f'"Bokeh-Session-Id", "{session_id}"' in html
    assert "connection_lost" in html  # the disconnection watcher
    assert "Live view of Bokeh session" in result.text()
    # A model of the session's document can be shown too.
    result = magics.execute("%bokeh_show shown.document.get_model_by_name('div')")
    assert session_id in result.text("text/html")
    # ClientSession.show() and show_session() display inline in a kernel as well.
    result = magics.execute("shown.show()")
    assert session_id in result.text("text/html")
    result = magics.execute("from bokeh_nb_client import show_session\nshow_session(session=shown)")
    assert session_id in result.text("text/html")


def test_show_in_a_browser_and_refusals(magics: KernelDriver) -> None:
    # BokehClient.browser = "none": the browser controller opens nothing.
    result = magics.execute("%bokeh_show shown --browser --new window")
    assert result.displays == []
    error = _usage_error(magics.execute("%bokeh_show 'text'", allow_error=True))
    assert "expected a session or a model" in error
    magics.execute("from bokeh.models import Div\nloose = Div()")
    error = _usage_error(magics.execute("%bokeh_show loose", allow_error=True))
    assert "not in the document of an open session" in error
    magics.execute("%bokeh_close shown")
    error = _usage_error(magics.execute("%bokeh_show shown", allow_error=True))
    assert "is closed" in error


def test_sessions_lists_names_kinds_and_states(
    magics: KernelDriver, bokeh_server: BokehServer
) -> None:
    magics.execute(
        "%bokeh_pull basic --as listed\n"
        "from bokeh_nb_client import pull_session_async\n"
        f"alisted = await pull_session_async(url={bokeh_server.http_url('empty')!r})\n"
    )
    # An AsyncClientSession (on the kernel's loop) can be shown too.
    async_id = magics.execute("print(alisted.id)").stdout.strip()
    assert async_id in magics.execute("%bokeh_show alisted").text("text/html")
    table = magics.execute("%bokeh_sessions").text()
    lines = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert lines["listed"][1:3] == ["sync", "connected"]
    assert lines["alisted"][1:3] == ["async", "connected"]
    assert table.splitlines()[0].split() == ["name", "kind", "state", "app", "session", "roots"]
    result = magics.execute("%bokeh_close --all", timeout=30)
    assert "closed listed" in result.stdout
    assert "left open: alisted is an AsyncClientSession" in result.stdout
    magics.execute("await alisted.close()")
    assert "No open Bokeh sessions" in magics.execute("%bokeh_sessions").text()


def test_close_refusals(magics: KernelDriver) -> None:
    error = _usage_error(magics.execute("%bokeh_close", allow_error=True))
    assert "give a NAME or --all" in error
    error = _usage_error(magics.execute("%bokeh_close no_such_session", allow_error=True))
    assert "no session named 'no_such_session'" in error


def test_connection_failures_are_one_line(magics: KernelDriver) -> None:
    error = _usage_error(magics.execute("%bokeh_pull no_such_app", allow_error=True))
    assert "%bokeh_pull: HTTP 404" in error
    assert "/no_such_app/ws" in error
    port = find_free_port()
    error = _usage_error(
        magics.execute(f"%bokeh_pull http://127.0.0.1:{port}/basic", allow_error=True)
    )
    assert f"cannot connect to ws://127.0.0.1:{port}/basic/ws" in error
    assert len(error.strip().splitlines()) == 1


def test_bad_arguments_raise_usage_errors(magics: KernelDriver) -> None:
    error = _usage_error(magics.execute("%bokeh_pull --bogus", allow_error=True))
    assert "%bokeh_pull: unrecognized arguments: --bogus" in error
    assert "usage: %bokeh_pull" in error
    error = _usage_error(magics.execute("%bokeh_pull basic --arg novalue", allow_error=True))
    assert "%bokeh_pull: --arg needs KEY=VALUE" in error
    error = _usage_error(magics.execute("%bokeh_pull basic --as 1x", allow_error=True))
    assert "--as needs a Python identifier" in error
    error = _usage_error(magics.execute("%bokeh_show --new tabs", allow_error=True))
    assert "invalid choice" in error


def test_help_comes_from_the_argument_declarations(magics: KernelDriver) -> None:
    for magic, option in [
        ("bokeh_pull", "--session-id"),
        ("bokeh_push", "EXPR"),
        ("bokeh_show", "--browser"),
        ("bokeh_sessions", "bokeh_sessions"),
        ("bokeh_close", "--all"),
    ]:
        result = magics.execute(f"%{magic}?")
        pages = [p["data"]["text/plain"] for p in result.payload if p.get("source") == "page"]
        assert pages, f"%{magic}? showed no help"
        assert f"%{magic}" in pages[0]
        assert option in pages[0]


def test_unload_closes_the_magics_sessions_and_removes_the_magics(
    magics: KernelDriver,
) -> None:
    magics.execute("%bokeh_pull basic --as before_unload\nmine = before_unload")
    magics.execute("%unload_ext bokeh_nb_client")
    result = magics.execute("print(mine.status.state.value)")
    assert result.stdout.strip() == "closed"
    error = magics.execute("%bokeh_pull basic", allow_error=True)
    assert error.status == "error"
    assert "bokeh_pull" in (error.stderr + (error.error or {}).get("evalue", ""))
    # Loading again works and starts from an empty registry.
    result = magics.execute("%load_ext bokeh_nb_client\n%bokeh_sessions")
    assert "No open Bokeh sessions" in result.text()
