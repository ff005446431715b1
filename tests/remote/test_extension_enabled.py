"""Installing the package enables the Jupyter server extension.

* The package's ``jupyter-config/.../bokeh_nb_client.json``, put in a config
  directory, makes ``jupyter server extension list`` show the extension enabled
  and valid (importable, with its loader): this is what the wheel installs.
* A real, non-editable ``pip install`` into a fresh virtual environment puts that
  file in ``<venv>/etc/jupyter/jupyter_server_config.d/``, and the environment's
  Jupyter lists the extension as enabled with no other configuration. (Editable
  installs do not: setuptools puts no data files in editable wheels, so a
  development checkout enables it with ``jupyter server extension enable
  --sys-prefix bokeh_nb_client.server_extension``.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from jupyter_process import EXTENSION_CONFIG, REPO_ROOT

pytestmark = pytest.mark.interop

EXTENSION = "bokeh_nb_client.server_extension"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def extension_list(python: str, config_dir: Path) -> str:
    """``jupyter server extension list`` as ``python`` sees it, with a private config dir."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir))
    env.pop("JUPYTER_PATH", None)
    result = subprocess.run(
        [python, "-m", "jupyter_server", "extension", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return ANSI.sub("", result.stdout + result.stderr)


def section(listing: str, config_dir: Path) -> str:
    """The part of a listing under ``Config dir: <config_dir>``."""
    parts = re.split(r"^Config dir: ", listing, flags=re.MULTILINE)
    found = [part for part in parts if part.startswith(str(config_dir))]
    assert found, listing
    return found[0]


def assert_enabled(text: str) -> None:
    assert re.search(rf"^\s*{re.escape(EXTENSION)} enabled\s*$", text, re.MULTILINE), text
    assert re.search(rf"^\s*{re.escape(EXTENSION)} \S* ?\s*OK\s*$", text, re.MULTILINE), text


def test_the_shipped_config_file_enables_a_valid_extension(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    (config_dir / "jupyter_server_config.d").mkdir(parents=True)
    shutil.copy(EXTENSION_CONFIG, config_dir / "jupyter_server_config.d")
    assert_enabled(section(extension_list(sys.executable, config_dir), config_dir))


@pytest.mark.timeout(240)
def test_pip_install_enables_the_extension(tmp_path: Path) -> None:
    # Build from a copy, so the in-tree build directories never touch the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "bokeh_nb_client", source / "bokeh_nb_client", ignore=ignore)
    shutil.copytree(REPO_ROOT / "jupyter-config", source / "jupyter-config")

    environment = tmp_path / "venv"
    # System site packages give the venv jupyter_server without a download.
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(environment)
    python = str(environment / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    offline = ("No matching distribution found for setuptools", "NewConnectionError")
    if install.returncode != 0 and any(sign in install.stderr for sign in offline):
        pytest.skip(f"cannot fetch the build backend (offline?): {install.stderr[-500:]}")
    assert install.returncode == 0, install.stderr

    installed = environment / "etc" / "jupyter" / "jupyter_server_config.d" / EXTENSION_CONFIG.name
    assert installed.read_text() == EXTENSION_CONFIG.read_text()
    empty = tmp_path / "no-user-config"
    empty.mkdir()
    listing = extension_list(python, empty)
    assert_enabled(section(listing, environment / "etc" / "jupyter"))
