"""Every tour notebook, run as a user runs it: JupyterLab's Run > Run All Cells.

For each notebook of ``notebooks/`` (issue 12, items 11 to 15):

* every code cell runs (Run All does not stop at a cell tagged
  ``raises-exception``), and only such tagged cells show an error;
* every live view ends live (showing the session's roots) or says that its
  session was closed; none is left loading or failed;
* widgets render as widgets; the session browser's panel still shows its
  sessions after Run All;
* ``live_streaming``'s ``show`` displays a plot.

Each notebook's page, scrolled to its panel or first live view, is saved to
``test-artifacts/browser/tour_<name>.png``.
The notebooks read the Bokeh server from ``BOKEH_NB_SERVER``, set here for
JupyterLab and so for its kernels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from bokeh_server import BokehServer, StartBokehServer
from browser_support import BROWSER_ARTIFACTS, open_notebook, run_all_cells
from lab_process import JupyterLab, start_kernel_session, wait_for_kernel_connection

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO_ROOT / "notebooks"
ARTIFACTS = BROWSER_ARTIFACTS
TOURS = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
TIMEOUT_MS = 120_000

# True once every code cell shows an execution count ("[12]:"), none "[*]:" or "[ ]:".
_ALL_RAN = """(n) => {
  const prompts = Array.from(document.querySelectorAll(
    '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'));
  return prompts.length === n && prompts.every((p) => /\\[\\d+\\]/.test(p.textContent));
}"""


@pytest.fixture
def tour_server(start_bokeh_server: StartBokehServer) -> BokehServer:
    """The test apps the tours use; the views connect from the JupyterLab page."""
    return start_bokeh_server(extra_args=("--allow-websocket-origin", "*"))


@pytest.fixture
def lab_env(tour_server: BokehServer) -> dict[str, str]:
    return {"BOKEH_NB_SERVER": tour_server.http_url()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("tour", TOURS)
def test_tour_runs_with_run_all(
    tour: str, jupyter_lab: JupyterLab, chromium_page: Any, tour_server: BokehServer
) -> None:
    page = chromium_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"tour_{Path(tour).stem}.png"
    try:
        _run_tour(page, jupyter_lab, tour)
    finally:
        page.screenshot(path=str(shot))


def _run_tour(page: Any, lab: JupyterLab, tour: str) -> None:
    shutil.copy(NOTEBOOKS / tour, lab.root_dir / tour)
    cells = json.loads((NOTEBOOKS / tour).read_text())["cells"]
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    raising = {
        i for i in code if "raises-exception" in cells[i].get("metadata", {}).get("tags", [])
    }
    start_kernel_session(lab, tour)
    open_notebook(page, lab.login_url(), tour, lambda: wait_for_kernel_connection(lab, tour))
    run_all_cells(page)

    # Every code cell ran.
    page.wait_for_function(_ALL_RAN, arg=len(code), timeout=TIMEOUT_MS)
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached", timeout=TIMEOUT_MS
    )

    # Errors only where the tour means them.
    dom_cells = page.locator(".jp-Notebook .jp-Cell")
    assert dom_cells.count() == len(cells)
    for i in code:
        errors = dom_cells.nth(i).locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        texts = [t for t in errors.all_inner_texts() if "Error" in t or "Traceback" in t]
        if i in raising:
            assert texts, f"cell {i} of {tour} is tagged raises-exception but did not fail"
        else:
            assert not texts, f"cell {i} of {tour} failed: {texts}"

    # Live views end live (with their roots rendered) or closed, never loading or failed.
    views = page.locator(".bnc-view")
    settled = ".bnc-view:not([data-state='live']):not([data-state='closed'])"
    page.wait_for_function(
        f"() => document.querySelectorAll({json.dumps(settled)}).length === 0",
        timeout=TIMEOUT_MS,
    )
    for index in range(views.count()):
        view = views.nth(index)
        if view.get_attribute("data-state") == "live":
            view.locator("[class^='bk-']:visible, [class*=' bk-']:visible").first.wait_for(
                timeout=TIMEOUT_MS
            )

    # Widgets render as widgets.
    assert page.get_by_text("Error displaying widget").count() == 0

    stem = Path(tour).stem
    if stem == "session_browser":
        rows = page.locator(".bnc-panel-row")
        rows.first.wait_for(timeout=TIMEOUT_MS)
        live_rows = page.locator(".bnc-panel-row .bnc-state[data-state='connected']")
        live_rows.first.wait_for(timeout=TIMEOUT_MS)
    if stem == "live_streaming":
        plot = page.locator(".bnc-view[data-state='live'] .bk-Figure")
        plot.first.wait_for(timeout=TIMEOUT_MS)
    if stem in ("quickstart", "live_streaming", "magics"):
        assert views.count() >= 1, f"{tour} shows no live view"

    # The screenshot shows the tour's subject: its panel, or its first live view.
    subject = page.locator(".bnc-panel-row, .bnc-view[data-state='live']").first
    if subject.count():
        subject.scroll_into_view_if_needed()
