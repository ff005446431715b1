"""Print the "Supported versions" table of README.md from the matrix's JUnit reports.

Usage: ``python .ci/matrix_table.py [REPORT_DIR]`` (default ``test-artifacts/matrix``,
where ``.ci/noxfile.py`` writes one report per leg). Each report's suite name holds
the leg's name, the versions it ran with and its tiers.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


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
        tiers = ", ".join(t.removeprefix("tests/") for t in values.get("tiers", "").split(","))
        lines.append(
            f"| {name} | {values.get('python', '?')} | {values.get('bokeh', '?')} "
            f"| {values.get('aiohttp', '?')} | {values.get('ipykernel', '?')} "
            f"| {values.get('ipywidgets', '?')} | {values.get('IPython', '?')} "
            f"| {values.get('traitlets', '?')} | {tiers} | {tests - failed - skipped} "
            f"| {failed} | {skipped} | {seconds:.0f} s |"
        )
    return lines


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/matrix")
    print("\n".join(rows(folder)))
