"""The extension in a real in-process IPython shell, with no kernel and no server.

Covers registration and removal, ``%config BokehClient...``, the help generated
from the argument declarations, usage errors that need no server, a refused
connection (a closed local port), and where ``show()`` goes outside a kernel.
Everything that needs a live ``bokeh serve`` is in ``tests/kernel``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bokeh_server import find_free_port
from IPython.core.error import UsageError
from IPython.core.getipython import get_ipython as running_shell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
from traitlets import TraitError

import bokeh_nb_client.jupyter as ext
from bokeh_nb_client import show_session
from bokeh_nb_client.jupyter import display
from bokeh_nb_client.jupyter.config import BokehClient

MAGICS = ("bokeh_pull", "bokeh_push", "bokeh_show", "bokeh_sessions", "bokeh_close")


def get_ipython() -> Any:
    """The global test shell (IPython's testing shell, started once per process)."""
    return start_ipython() or running_shell()


@pytest.fixture
def ip() -> Iterator[Any]:
    """The global test shell with the extension loaded (unloaded afterwards)."""
    shell = get_ipython()
    shell.run_line_magic("load_ext", "bokeh_nb_client")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "bokeh_nb_client")


class RecordingController:
    """A browser controller that records what it was asked to open."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append((url, new))
        return True


def test_load_registers_magics_and_configurable(ip: Any) -> None:
    for name in MAGICS:
        assert ip.find_line_magic(name) is not None
    config = ext.current_config()
    assert isinstance(config, BokehClient)
    assert config in ip.configurables


def test_unload_removes_magics_and_configurable() -> None:
    shell = get_ipython()
    shell.run_line_magic("load_ext", "bokeh_nb_client")
    config = ext.current_config()
    shell.run_line_magic("unload_ext", "bokeh_nb_client")
    for name in MAGICS:
        assert shell.find_line_magic(name) is None
    assert config not in shell.configurables
    assert ext.current_config() is None


def test_config_magic_sets_traits(ip: Any) -> None:
    ip.run_line_magic("config", 'BokehClient.default_url = "http://dashboards.example:5006/"')
    ip.run_line_magic("config", "BokehClient.timeout = 7")
    ip.run_line_magic("config", 'BokehClient.show = "browser"')
    config = ext.current_config()
    assert config is not None
    assert config.default_url == "http://dashboards.example:5006/"
    assert config.session_options() == {"timeout": 7.0}
    assert config.show == "browser"


def test_config_rejects_bad_values() -> None:
    config = BokehClient()
    with pytest.raises(TraitError):
        config.timeout = 0.0
    with pytest.raises(TraitError):
        config.show = "sometimes"


def test_secret_key_comes_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = BokehClient(secret_key_env="MY_BOKEH_KEY")
    monkeypatch.delenv("MY_BOKEH_KEY", raising=False)
    assert "secret_key" not in config.session_options()
    monkeypatch.setenv("MY_BOKEH_KEY", "s3cret")
    assert config.session_options()["secret_key"] == "s3cret"
    assert "s3cret" not in repr(config.trait_values())


@pytest.mark.parametrize(
    ("magic", "expected"),
    [
        ("bokeh_pull", ["--session-id", "--as", "--arg KEY=VALUE", "[url]"]),
        ("bokeh_push", ["[EXPR]", "[URL]", "--session-id", "--as"]),
        ("bokeh_show", ["[EXPR]", "--browser", "--new {tab,window}"]),
        ("bokeh_sessions", ["%bokeh_sessions"]),
        ("bokeh_close", ["[NAME]", "--all"]),
    ],
)
def test_help_is_generated_from_the_declarations(ip: Any, magic: str, expected: list[str]) -> None:
    doc = ip.find_line_magic(magic).__doc__
    assert f"%{magic}" in doc
    for text in expected:
        assert text in doc


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bokeh_pull --bogus", "%bokeh_pull: unrecognized arguments: --bogus"),
        ("bokeh_pull app --arg nokey", "%bokeh_pull: --arg needs KEY=VALUE, got 'nokey'"),
        ("bokeh_pull app --as 2x", "%bokeh_pull: --as needs a Python identifier, got '2x'"),
        ("bokeh_pull ws://h:1/app/ws", "%bokeh_pull: url should be the http(s) URL of the app"),
        ("bokeh_push 42", "%bokeh_push: 42 is a int; expected a Document"),
        ("bokeh_push nope_not_defined", "%bokeh_push: cannot evaluate 'nope_not_defined'"),
        ("bokeh_show", "%bokeh_show: no session to show"),
        ("bokeh_show 'text'", "%bokeh_show: 'text' is a str; expected a session or a model"),
        ("bokeh_show --new door", "%bokeh_show: argument --new: invalid choice"),
        ("bokeh_close", "%bokeh_close: give a NAME or --all"),
        ("bokeh_close a --all", "%bokeh_close: give a NAME or --all"),
        ("bokeh_close nobody", "%bokeh_close: no session named 'nobody'"),
        ("bokeh_sessions extra", "%bokeh_sessions: unrecognized arguments: extra"),
    ],
)
def test_usage_errors(ip: Any, line: str, message: str) -> None:
    magic, _, rest = line.partition(" ")
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic(magic, rest)
    assert str(caught.value).startswith(message), str(caught.value)


def test_usage_error_for_arguments_names_the_usage(ip: Any) -> None:
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("bokeh_pull", "--bogus")
    usage = str(caught.value).splitlines()[-1]
    assert usage.startswith("usage: %bokeh_pull [--session-id SESSION_ID]")


def test_a_model_in_a_document_cannot_be_pushed_alone(ip: Any) -> None:
    ip.run_cell(
        "from bokeh.models import Div\nfrom bokeh.document import Document\n"
        "owned = Div()\nDocument().add_root(owned)"
    )
    with pytest.raises(UsageError, match="already belongs to a Document"):
        ip.run_line_magic("bokeh_push", "owned")


def test_a_refused_connection_is_one_line(ip: Any) -> None:
    port = find_free_port()
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("bokeh_pull", f"http://127.0.0.1:{port}/app")
    message = str(caught.value)
    assert message.startswith(f"%bokeh_pull: cannot connect to ws://127.0.0.1:{port}/app/ws")
    assert "\n" not in message
    assert "session" not in ip.user_ns or ip.user_ns["session"] is not None


def test_an_app_name_is_resolved_against_default_url(ip: Any) -> None:
    port = find_free_port()
    ip.run_line_magic("config", f'BokehClient.default_url = "http://127.0.0.1:{port}/"')
    with pytest.raises(UsageError, match=f"ws://127.0.0.1:{port}/myapp/ws"):
        ip.run_line_magic("bokeh_pull", "myapp")


def test_show_session_opens_a_browser_outside_a_kernel() -> None:
    controller = RecordingController()
    show_session(session_id="abc", url="http://127.0.0.1:1/app", controller=controller)
    assert controller.opened == [("http://127.0.0.1:1/app?bokeh-session-id=abc", 2)]
    assert display.show_in_notebook("http://127.0.0.1:1/app", "abc") is False


def test_show_inline_can_be_forced_by_configuration(ip: Any) -> None:
    # show_session() consults the front end only inside a kernel (tests/kernel
    # covers that path); here the front end's own decision is checked.
    assert display.show_in_notebook("http://127.0.0.1:1/app", "abc") is False
    ip.run_line_magic("config", 'BokehClient.show = "inline"')
    with capture_output() as captured:
        assert display.show_in_notebook("http://127.0.0.1:1/app", "abc") is True
    assert len(captured.outputs) == 1
    assert "Bokeh-Session-Id" in captured.outputs[0].data["text/html"]


def test_registry_binds_forgets_and_closes() -> None:
    class Closable:
        def __init__(self) -> None:
            self.closed = False
            self.async_session = object()

        def close(self) -> None:
            self.closed = True

    registry = ext.SessionRegistry()
    first, second = Closable(), Closable()
    assert registry.bind("a", first) is None  # type: ignore[arg-type]
    assert registry.bind("a", second) is first  # type: ignore[arg-type]
    assert registry.bind("b", second) is None  # type: ignore[arg-type]
    assert registry.name_of(second.async_session) == "a"
    assert registry.latest() is second
    registry.forget_session(second)  # type: ignore[arg-type]
    assert len(registry) == 0
    registry.bind("c", first)  # type: ignore[arg-type]
    assert registry.close_all() == []
    assert first.closed
    assert "c" not in registry
