"""``panel serve`` as a test server: :class:`BokehServer` with Panel's command line.

``panel serve`` takes ``bokeh serve``'s options (address, port, allowed origins)
and serves ``dir/name.py`` at ``/name`` as well, so only the command differs.
"""

from __future__ import annotations

from pathlib import Path

from bokeh_server import BokehServer

__all__ = ["PANEL_APP", "PanelServer"]

PANEL_APP = Path(__file__).parent / "apps" / "panel_app.py"


class PanelServer(BokehServer):
    """A ``python -m panel serve`` subprocess on 127.0.0.1 at a free port."""

    @property
    def argv(self) -> list[str]:
        argv = super().argv
        at = argv.index("bokeh")
        assert argv[at + 1] == "serve"
        return [*argv[:at], "panel", *argv[at + 1 :]]
