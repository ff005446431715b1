"""The package as a user installs it: build the sdist and the wheel, install the
wheel into a fresh virtual environment, and check what a release promises.

* the sdist and the wheel carry the license, the README, the typed marker, the
  bundled demo app and the Jupyter config file; the metadata names the SPDX
  license and the version written once in ``bokeh_nb_client/__init__.py``;
* installing the wheel (not an editable install: setuptools puts no data files
  in those) enables the Jupyter server extension with no other configuration;
* ``%load_ext bokeh_nb_client`` registers the magics, and the demo app and the
  ``bokeh-nb-demo`` command are present.

The fresh environment must not depend on how the test runner itself was
installed (a venv, or a system Python): it is a plain venv, and a ``.pth`` file
lends it the running interpreter's own site-packages, so jupyter_server, IPython
and bokeh resolve without a download while ``bokeh_nb_client`` comes only from
the wheel just built.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import bokeh_nb_client

pytestmark = pytest.mark.interop

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION = "bokeh_nb_client.server_extension"
CONFIG_NAME = "bokeh_nb_client.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], *, env: dict[str, str] | None = None, stdout_only: bool = False) -> str:
    """Run a command that must succeed, outside the checkout (``python -c`` puts the
    working directory first on ``sys.path``); its output without colour codes."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=300, check=False, env=env, cwd="/"
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return ANSI.sub("", result.stdout if stdout_only else result.stdout + result.stderr)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel built from a copy of the checkout (build dirs stay out of it)."""
    root = tmp_path_factory.mktemp("dist")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "bokeh_nb_client", source / "bokeh_nb_client", ignore=ignore)
    shutil.copytree(REPO_ROOT / "jupyter-config", source / "jupyter-config")
    out = root / "out"
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(source)])
    return out


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_the_wheel_carries_license_metadata_and_package_data(dist: Path) -> None:
    wheel = only(dist, "bokeh_nb_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = only_name(names, ".dist-info/METADATA")
        metadata = email.message_from_bytes(archive.read(info))
    assert metadata["Version"] == bokeh_nb_client.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), names
    for required in (
        "bokeh_nb_client/py.typed",
        "bokeh_nb_client/apps/monitor.py",
        "bokeh_nb_client/jupyter/static/view.js",
    ):
        assert required in names
    assert any(
        name.endswith(f"etc/jupyter/jupyter_server_config.d/{CONFIG_NAME}") for name in names
    )


def test_the_sdist_carries_what_a_rebuild_needs(dist: Path) -> None:
    sdist = only(dist, "bokeh_nb_client-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in (
        "pyproject.toml",
        "README.md",
        "LICENSE",
        f"jupyter-config/jupyter_server_config.d/{CONFIG_NAME}",
        "bokeh_nb_client/apps/monitor.py",
        "bokeh_nb_client/py.typed",
    ):
        assert required in names, sorted(names)


def only_name(names: set[str], suffix: str) -> str:
    found = [name for name in names if name.endswith(suffix)]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its python."""
    environment = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            stdout_only=True,
        ).strip()
    )
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_lent_from_test_runner.pth").write_text("\n".join(sorted(lent)) + "\n")
    wheel = only(dist, "bokeh_nb_client-*.whl")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel)])
    return python


def test_installing_the_wheel_enables_the_server_extension(installed: Path, tmp_path: Path) -> None:
    prefix = installed.parent.parent
    config = prefix / "etc" / "jupyter" / "jupyter_server_config.d" / CONFIG_NAME
    shipped = REPO_ROOT / "jupyter-config" / "jupyter_server_config.d" / CONFIG_NAME
    assert config.read_text() == shipped.read_text()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path))
    env.pop("JUPYTER_PATH", None)
    listing = run([str(installed), "-m", "jupyter_server", "extension", "list"], env=env)
    assert re.search(rf"^\s*{re.escape(EXTENSION)} enabled\s*$", listing, re.MULTILINE), listing
    assert re.search(rf"^\s*{re.escape(EXTENSION)} \S* ?\s*OK\s*$", listing, re.MULTILINE), listing


def test_the_installed_package_loads_its_magics_and_ships_the_demo(installed: Path) -> None:
    prefix = installed.parent.parent
    probe = (
        "import importlib.resources, bokeh_nb_client\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'bokeh_nb_client')\n"
        "line = shell.magics_manager.magics['line']\n"
        "print(sorted(name for name in line if name.startswith('bokeh_')))\n"
        "print(bokeh_nb_client.__file__)\n"
        "app = importlib.resources.files('bokeh_nb_client') / 'apps' / 'monitor.py'\n"
        "print(app.is_file())\n"
    )
    magics, location, app_present = (
        run([str(installed), "-c", probe], stdout_only=True).strip().splitlines()[-3:]
    )
    for name in ("bokeh_pull", "bokeh_push", "bokeh_show", "bokeh_sessions", "bokeh_close"):
        assert name in magics
    assert Path(location).is_relative_to(prefix), location
    assert app_present == "True"
    assert (prefix / "bin" / "bokeh-nb-demo").is_file()
