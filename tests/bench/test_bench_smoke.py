"""Smoke test of the benchmark suite: ``python bench/run.py --tiny`` runs end to end.

It checks that the suite works (it exits 0 and reports a number for ``ours`` in
every case), never how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = (
    "latency",
    "pull",
    "pull_huge",
    "open",
    "burst",
    "server_push",
    "kernel",
    "stream_out",
    "stream_in",
)


@pytest.mark.interop
@pytest.mark.kernel
@pytest.mark.timeout(240)
def test_tiny_run_reports_every_case_for_ours(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--tiny", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"

    report = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# bokeh_nb_client benchmark")
    assert report["meta"]["mode"] == "tiny"
    for case in CASES:
        ours = report["cases"][case]["ours"]
        assert "error" not in ours, f"{case}: {ours['error']}"
    assert set(report["cases"]) == set(CASES)
    assert {t["case"] for t in report["targets"]} >= set(CASES)
    # Each figure has the floor and bokeh.client beside ours.
    for case in ("pull", "pull_huge", "stream_out", "stream_in"):
        for impl in ("bokeh", "floor"):
            assert impl in report["cases"][case], f"{case}: no {impl}"
    assert "cpu_s" in report["cases"]["pull"]["kernel"]
    assert report["cases"]["stream_out"]["ours"]["in_order"] is True
