"""Print the "Supported versions" table of README.md from the matrix's JUnit reports.

Usage: ``python .ci/matrix_table.py [REPORT_DIR]`` (default ``test-artifacts/matrix``,
where ``.ci/noxfile.py`` writes one report per leg). Each report's suite name holds
the leg's name, the versions it ran with and its tiers.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def _tiers(field: str) -> str:
    """``tests/unit,tests/interop/test_connect.py,...`` -> ``unit, interop (connect, ...)``."""
    whole: list[str] = []
    files: dict[str, list[str]] = {}
    for path in filter(None, field.split(",")):
        tier, _, file = path.removeprefix("tests/").partition("/")
        if file:
            files.setdefault(tier, []).append(file.removeprefix("test_").removesuffix(".py"))
        else:
            whole.append(tier)
    return ", ".join([*whole, *(f"{tier} ({', '.join(names)})" for tier, names in files.items())])


def rows(folder: Path) -> list[str]:
    lines = [
        "| leg | Python | bokeh | aiohttp | ipykernel | ipywidgets | IPython | traitlets "
        "| tiers | passed | failed | skipped | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for report in sorted(folder.glob("*.xml")):
        root = ElementTree.parse(report).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        if suite is None:
            continue
        name, *fields = suite.get("name", report.stem).split()
        values = dict(field.split("=", 1) for field in fields if "=" in field)
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        seconds = float(suite.get("time", 0.0))
        tiers = _tiers(values.get("tiers", ""))
        lines.append(
            f"| {name} | {values.get('python', '?')} | {values.get('bokeh', '?')} "
            f"| {values.get('aiohttp', '?')} | {values.get('ipykernel', '?')} "
            f"| {values.get('ipywidgets', '?')} | {values.get('IPython', '?')} "
            f"| {values.get('traitlets', '?')} | {tiers} | {tests - failed - skipped} "
            f"| {failed} | {skipped} | {seconds:.0f} s |"
        )
    return lines


def counts(report: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) of one JUnit report."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def summary(reports: list[Path]) -> str:
    """One closing line over every report: the suite's and each matrix leg's."""
    passed = failed = skipped = 0
    for report in reports:
        p, f, s = counts(report)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    return f"ci: {passed} passed, {failed} failed, {skipped} skipped"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        suite, folder = Path(sys.argv[2]), Path(sys.argv[3])
        reports = [r for r in [suite, *sorted(folder.glob("*.xml"))] if r.is_file()]
        print("\n".join(rows(folder)))
        print(summary(reports))
    else:
        print("\n".join(rows(Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/matrix"))))
