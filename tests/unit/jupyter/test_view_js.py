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
