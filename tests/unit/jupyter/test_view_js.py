"""The view's browser code is a JavaScript file of the package (not a Python string)."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

from bokeh_nb_client.jupyter import display


def test_the_view_script_is_package_data_and_is_inlined() -> None:
    path = resources.files("bokeh_nb_client.jupyter").joinpath("static", "view.js")
    source = path.read_text("utf-8")
    assert "window.bokehNbClient = {" in source
    assert display.view_script() == source


def test_the_view_script_parses_as_javascript() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = resources.files("bokeh_nb_client.jupyter").joinpath("static", "view.js")
    checked = subprocess.run(
        [node, "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr


def _renew_in_node(token: str, received_at_ms: int, now_ms: int) -> str:
    """Run view.js in node (with just enough of a page) and renew ``token`` there."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = resources.files("bokeh_nb_client.jupyter").joinpath("static", "view.js")
    script = (
        "globalThis.window = globalThis;\n"
        "globalThis.document = {getElementById: () => null};\n"
        f"require('vm').runInThisContext(require('fs').readFileSync({str(path)!r}, 'utf8'));\n"
        f"const renewed = window.bokehNbClient.renewedToken({token!r}, {received_at_ms}, "
        f"{now_ms});\n"
        "window.bokehNbClient.disposeAll();\n"
        "process.stdout.write(renewed);\n"
    )
    ran = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_an_expired_unsigned_token_is_renewed_for_a_manual_reconnect() -> None:
    # What the server reads of a token (bokeh's own functions), before and after.
    from bokeh.util.token import check_token_signature, generate_jwt_token, get_token_payload

    extra = {"headers": {"Authorization": "Bearer x"}, "cookies": {"a": "b"}}
    token = generate_jwt_token(
        "a-session", secret_key=None, signed=False, extra_payload=extra, expiration=-10
    )
    renewed = _renew_in_node(token, received_at_ms=1_000, now_ms=26_500)

    before, after = get_token_payload(token), get_token_payload(renewed)
    assert after["session_expiry"] == before["session_expiry"] + 26  # 25.5 s, rounded up
    assert {k: v for k, v in after.items() if k != "session_expiry"} == {
        k: v for k, v in before.items() if k != "session_expiry"
    }
    assert after["headers"] == extra["headers"]
    assert check_token_signature(renewed, secret_key=None, signed=False)


def test_a_signed_token_is_left_as_it_is() -> None:
    from bokeh.util.token import generate_jwt_token

    key = b"x" * 44
    token = generate_jwt_token("a-session", secret_key=key, signed=True, expiration=-10)
    assert _renew_in_node(token, received_at_ms=0, now_ms=60_000) == token
