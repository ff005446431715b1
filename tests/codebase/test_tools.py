"""Static checks as tests: ``mypy --strict`` and ``ruff check`` must pass.

Both tools are test dependencies (pyproject ``[test]``); a missing tool is a
failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import bokeh_nb_client

REPO = Path(bokeh_nb_client.__file__).resolve().parent.parent
TESTS = REPO / "tests"

# The test files this suite owns are held to the same lint rules as the package.
LINTED_TESTS = [
    *sorted((TESTS / "unit").glob("test_*.py")),
    TESTS / "unit" / "fakes.py",
    TESTS / "contract",
    TESTS / "codebase",
]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, cwd=REPO, check=False, timeout=300
    )


def ruff() -> list[str]:
    executable = shutil.which("ruff")
    return [executable] if executable else [sys.executable, "-m", "ruff"]


def test_mypy_strict_passes_on_the_package() -> None:
    result = run_tool(sys.executable, "-m", "mypy", "--strict", "bokeh_nb_client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_passes_on_the_package() -> None:
    result = run_tool(*ruff(), "check", "bokeh_nb_client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_passes_on_these_tests() -> None:
    result = run_tool(*ruff(), "check", *(str(p) for p in LINTED_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
