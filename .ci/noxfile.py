"""The version matrix: one nox session per supported bokeh minor, and one with the
oldest declared dependencies.

Run it from the repository root with ``python -m nox -f .ci/noxfile.py``
(``.ci/run`` does, after the main suite). The main suite (``python -m pytest``)
covers the newest stack (bokeh 3.9 on Python 3.11) with every tier; these legs
re-run the tiers whose behaviour depends on the versions, each against a real
``bokeh serve`` of the same version as the client:

* ``bokeh-3.4``, ``bokeh-3.6``, ``bokeh-3.8`` on Python 3.11, and ``bokeh-3.10`` on
  Python 3.12 (bokeh 3.10 needs Python >= 3.12): unit, contract, interop and
  hostile tiers;
* ``bokeh-3.5``, ``bokeh-3.7`` on Python 3.11 and ``bokeh-3.10`` on Python 3.13:
  the same less the interop files about our own reconnects and requests
  (``WIRE_TIERS``), so that every supported minor and Python is tested and the
  whole CI run stays short;
* ``oldest``: bokeh 3.9 with the lowest versions ``pyproject.toml`` declares for
  aiohttp, ipykernel, ipywidgets, IPython and traitlets: unit, interop and kernel
  tiers.

Test tools and every package not under test come from ``.ci/constraints.txt``
(the lock of the main run), less the packages a leg sets itself and the ones
those pull in, so a leg fails only for the versions it is about. A Python that
this machine does not have is reported and its legs are left out (on CI they
must exist: pyenv on our machines carries 3.12 and 3.13).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / ".ci" / "constraints.txt"
PYTHON_311 = "3.11"

nox.options.default_venv_backend = "uv|venv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True

# The test tools the lower tiers need (a subset of the ``test`` extra: no
# JupyterLab, Playwright or nginx helpers).
CORE_TEST_TOOLS = ["pytest", "pytest-timeout", "hypothesis", "psutil", "trustme"]
KERNEL_TEST_TOOLS = ["jupyter_client", "nbformat", "nbclient"]

# The burst test's size in the legs (the main suite sends 100,000): see
# tests/interop/test_document_sync.py.
LEG_BURST_EVENTS = 20_000

LOWER_TIERS = ["tests/unit", "tests/contract", "tests/interop", "tests/hostile"]

# The minors between the anchors (3.4, 3.6, 3.8, 3.9 in the main suite, 3.10), and
# Python 3.13 beside 3.12 on bokeh 3.10, run the lower tiers less the interop files
# about this client's own state machine (reconnects, request records), whose
# behaviour no bokeh minor changes: they keep everything that goes through bokeh's
# serialization, the wire and the app.
WIRE_TIERS = [
    "tests/unit",
    "tests/contract",
    "tests/hostile",
    "tests/interop/test_connect.py",
    "tests/interop/test_document_sync.py",
    "tests/interop/test_event_kinds.py",
    "tests/interop/test_binary_buffers.py",
    "tests/interop/test_client_callbacks.py",
]

# Left to the main suite: the tests of our ``bokeh serve`` fixtures themselves.
LEG_IGNORES = ["--ignore=tests/interop/test_server_fixture.py"]

OLDEST = {
    "aiohttp": "3.9.0",
    "ipykernel": "6.29.5",
    "ipywidgets": "8.0.0",
    "IPython": "8.0.0",
    "traitlets": "5.9.0",
}


def interpreter(version: str) -> str | None:
    """A path to Python ``version`` on this machine: PATH first, then pyenv's."""
    found = shutil.which(f"python{version}")
    if found and os.access(found, os.X_OK) and "/shims/" not in found:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}")):
        return str(candidate)
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    return None


def locked(session: nox.Session, leave_out: set[str]) -> Path:
    """The lock less ``leave_out`` (normalized names), written for this session."""
    normal = {re.sub(r"[-_.]+", "-", name).lower() for name in leave_out}
    kept = []
    for line in LOCK.read_text().splitlines():
        name = re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0]
        if name and not line.startswith("#") and re.sub(r"[-_.]+", "-", name).lower() in normal:
            continue
        kept.append(line)
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join(kept) + "\n")
    return path


REPORTS = ROOT / "test-artifacts" / "matrix"
VERSIONS = (
    "import sys, aiohttp, bokeh, IPython, ipykernel, ipywidgets, traitlets; "
    "print(f'python={sys.version.split()[0]} bokeh={bokeh.__version__} "
    "aiohttp={aiohttp.__version__} ipykernel={ipykernel.__version__} "
    "ipywidgets={ipywidgets.__version__} IPython={IPython.__version__} "
    "traitlets={traitlets.__version__}')"
)


def run_tiers(session: nox.Session, tiers: list[str]) -> None:
    """Run ``tiers`` with pytest; the JUnit report is named by the versions under test
    (``.ci/matrix_table.py`` turns the reports into the README's table)."""
    session.chdir(ROOT)
    versions = str(session.run("python", "-c", VERSIONS, silent=True)).strip().splitlines()[-1]
    session.log(versions)
    REPORTS.mkdir(parents=True, exist_ok=True)
    session.run(
        "python",
        "-m",
        "pytest",
        *tiers,
        *LEG_IGNORES,
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-q",
        "-m",
        "not slow",
        f"--junitxml={REPORTS / (session.name + '.xml')}",
        "-o",
        f"junit_suite_name={session.name} {versions} tiers={','.join(tiers)}",
        *session.posargs,
        env={"BNC_BURST_EVENTS": str(LEG_BURST_EVENTS)},
    )


# Packages a bokeh leg must not take from the lock: bokeh itself and what its
# older or newer releases pin differently.
BOKEH_FAMILY = {"bokeh", "numpy", "contourpy", "pandas", "narwhals", "tornado", "xyzservices"}

BOKEH_LEGS = [
    ("3.4", PYTHON_311, LOWER_TIERS),
    ("3.5", PYTHON_311, WIRE_TIERS),
    ("3.6", PYTHON_311, LOWER_TIERS),
    ("3.7", PYTHON_311, WIRE_TIERS),
    ("3.8", PYTHON_311, LOWER_TIERS),
    ("3.10", "3.12", LOWER_TIERS),
    ("3.10", "3.13", WIRE_TIERS),
]


def make_bokeh_leg(bokeh_minor: str, python: str, tiers: list[str]) -> None:
    path = interpreter(python)
    if path is None:
        print(
            f"note: Python {python} is not on this machine: leg bokeh-{bokeh_minor} "
            f"on Python {python} left out",
            file=sys.stderr,
        )
        return

    @nox.session(name=f"bokeh-{bokeh_minor}-py{python}", python=path)
    def leg(session: nox.Session) -> None:
        constraints = locked(session, BOKEH_FAMILY)
        session.install(
            "-c", str(constraints), "-e", str(ROOT), f"bokeh=={bokeh_minor}.*", *CORE_TEST_TOOLS
        )
        run_tiers(session, tiers)


for _minor, _python, _tiers in BOKEH_LEGS:
    make_bokeh_leg(_minor, _python, _tiers)


@nox.session(name="oldest", python=interpreter(PYTHON_311))
def oldest(session: nox.Session) -> None:
    """The lowest declared aiohttp, ipykernel, ipywidgets, IPython and traitlets."""
    pins = [f"{name}=={version}" for name, version in OLDEST.items()]
    session.install("-e", str(ROOT), *pins, *CORE_TEST_TOOLS, *KERNEL_TEST_TOOLS)
    run_tiers(session, ["tests/unit", "tests/interop", "tests/kernel"])
