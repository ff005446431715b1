"""A Panel app served by ``panel serve``, driven with the sync API.

Pull its document, change a widget and see the server's reaction, stream rows
and see the server count them; and (issue 13 item 7) in a process that has not
imported ``panel``, the pull fails with an error that names the package that
defines the missing model types, and importing it fixes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import panel  # noqa: F401 - defines Panel's model types in this process, as users do
import pytest
from bokeh.document import Document
from bokeh.models import ColumnDataSource, Div, Slider

from bokeh_nb_client import pull_session

from .panel_server import PANEL_APP, PanelServer
from .support import round_trips_until

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def panel_server() -> Iterator[PanelServer]:
    with PanelServer.start([PANEL_APP]) as server:
        yield server


def labelled_div(doc: Document, label: str) -> Div:
    """The Div Panel renders a ``StaticText(name=label)`` as (``<b>label</b>: value``)."""
    [div] = [m for m in doc.models if isinstance(m, Div) and m.text.startswith(f"<b>{label}</b>")]
    return div


def test_pull_change_a_widget_see_the_reaction_and_stream(panel_server: PanelServer) -> None:
    session = pull_session(url=panel_server.http_url("panel_app"))
    try:
        doc = session.document
        assert doc is not None
        slider = doc.select_one({"type": Slider})
        square = labelled_div(doc, "square")
        rows = labelled_div(doc, "rows")
        assert square.text == "<b>square</b>: 1"

        slider.value = 7  # Panel's IntSlider on the server; its watcher squares it
        round_trips_until(session, lambda: square.text == "<b>square</b>: 49")

        source = doc.select_one({"name": "stream_source"})
        assert isinstance(source, ColumnDataSource)
        source.stream({"x": [1, 2, 3], "y": [1, 4, 9]})
        source.stream({"x": [4], "y": [16]})
        round_trips_until(session, lambda: rows.text == "<b>rows</b>: 4")
        assert source.data == {"x": [1, 2, 3, 4], "y": [1, 4, 9, 16]}
    finally:
        session.close()


# What a user runs in a fresh process: pull without importing panel, then with.
_WITHOUT_PANEL = textwrap.dedent(
    """
    import json, sys
    from bokeh_nb_client import pull_session
    from bokeh_nb_client.exceptions import UnknownModelTypes

    url = sys.argv[1]
    report = {"panel_imported_before": "panel" in sys.modules}
    try:
        pull_session(url=url).close()
    except UnknownModelTypes as exc:
        report.update(error=str(exc), types=exc.types, packages=exc.packages)
    import panel
    session = pull_session(url=url)
    report["roots_after_import"] = len(session.document.roots)
    session.close()
    print(json.dumps(report))
    """
)


def test_pull_without_panel_names_the_package_and_import_fixes_it(
    panel_server: PanelServer, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PANEL, panel_server.http_url("panel_app")],
        cwd=tmp_path,  # the installed package, not a checkout that happens to be the cwd
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["panel_imported_before"] is False
    assert "error" in report, "the pull without panel did not raise UnknownModelTypes"
    assert report["packages"] == ["panel"]
    assert "panel.models.layout.Column" in report["types"]
    assert all(name.startswith("panel.") for name in report["types"])
    assert "import panel" in report["error"]
    assert report["roots_after_import"] >= 1
