"""Session state colours are defined once (rendering.STATE_COLOURS) and used everywhere."""

from __future__ import annotations

from pathlib import Path

from bokeh_nb_client.jupyter import panel_rows, rendering
from bokeh_nb_client.status import SessionState

JUPYTER = Path(rendering.__file__).parent


def test_every_state_has_one_colour_defined_in_one_module() -> None:
    assert set(rendering.STATE_COLOURS) == set(SessionState)
    for path in JUPYTER.glob("*.py"):
        if path.name != "rendering.py":
            assert "Mapping[SessionState, str]" not in path.read_text(), path.name
    # the panel's rows use the same function as render_status
    assert panel_rows.state_colour is rendering.state_colour
