"""Where the test apps live, and the options of the shared test server.

Import from here (``from testapps import app_paths``), not from ``conftest``:
several test directories have a ``conftest.py``, and a plain ``import conftest``
gets whichever was imported last.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

APPS_DIR = Path(__file__).parent / "interop" / "apps"
APPHELPERS_DIR = Path(__file__).parent / "interop" / "apphelpers"

#: Options of the session-wide server: a keepalive ping every second, and
#: sessions without connections discarded 2-3 s after their last client left
#: (PROTOCOL.md §5.2-5.3), so expiry tests finish quickly.
FAST_SESSION_ARGS: tuple[str, ...] = (
    "--keep-alive",
    "1000",
    "--check-unused-sessions",
    "1000",
    "--unused-session-lifetime",
    "2000",
)

#: Environment of the test servers. bokeh 3.8 gzips every array it inlines as
#: base64 (as its PULL-DOC-REPLY does) at BOKEH_COMPRESSION_LEVEL, 9 by default:
#: 34 s for ``arange(2_000_000)`` on this machine, against 0.14 s at level 1 for
#: the same size. Other versions do not read it for websocket traffic.
SERVER_ENV: dict[str, str | None] = {"BOKEH_COMPRESSION_LEVEL": "1"}

_INTEROP_DIR = str(APPS_DIR.parent)
if _INTEROP_DIR not in sys.path:
    sys.path.insert(0, _INTEROP_DIR)


def app_paths(names: Sequence[str] | None = None) -> list[Path]:
    """Return the paths of the named apps in ``APPS_DIR``, or of all of them.

    Args:
        names: App names (file stems or directory names, as in the URL); ``None``
            means every app, sorted by name.

    Raises:
        ValueError: A name matches no app.
    """
    available = {
        path.stem if path.is_file() else path.name: path
        for path in APPS_DIR.iterdir()
        if (path.suffix == ".py" or path.is_dir()) and not path.name.startswith(("_", "."))
    }
    if names is None:
        return [available[name] for name in sorted(available)]
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"no such app(s) {unknown} in {APPS_DIR}; have {sorted(available)}")
    return [available[name] for name in names]
