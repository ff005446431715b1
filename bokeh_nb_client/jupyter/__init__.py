"""The IPython/Jupyter front end: ``%load_ext bokeh_nb_client`` and friends.

What loading the extension does:

* registers the magics of :mod:`bokeh_nb_client.jupyter.magics`
  (``%bokeh_pull``, ``%bokeh_push``, ``%bokeh_show``, ``%bokeh_sessions``,
  ``%bokeh_close``);
* creates the :class:`~bokeh_nb_client.jupyter.config.BokehClient` configurable and
  adds it to the shell's configurables, so ``%config BokehClient.default_url = ...``
  works (and ``c.BokehClient...`` in an IPython profile);
* makes ``ClientSession.show()`` and ``show_session()`` honour that configuration;
* shows expected failures of the synchronous API (a ``BokehClientError``, an
  interrupted call) as the user's frames and one line of ours, not a traceback
  through the engine (:mod:`.errors`).

Unloading removes the magics and the configurable and closes every session in
:data:`registry`, the sessions the magics opened in this kernel (their inline
views are marked closed). Sessions the user opened in code (``pull_session(...)``)
belong to the user and are left alone.

Inline views (``%bokeh_show``, ``ClientSession.show()``, ``show_session()`` in a
kernel) are BokehJS in the notebook page. Through the server extension's proxy
(``bokeh_nb_client.server_extension``, used automatically when available) they
need only the Jupyter server; on the direct route the Bokeh server must be
reachable from the browser and accept the page's origin:
``bokeh serve ... --allow-websocket-origin=<host:port of the Jupyter server>``.
A view that cannot load says so, naming the origin to allow; a view whose
connection drops says it is disconnected. See :mod:`.display`.

Invariants:

* This package is the only part of bokeh_nb_client that imports IPython, ipywidgets
  or traitlets, and this module imports none of them at import time: ``client.py``
  imports :mod:`.display` lazily from ``show_session`` even in plain scripts, and a
  script must not pay for (or depend on) IPython.
* Magics are thin: parse, call the public synchronous API, render. Everything that
  touches the wire lives below this package.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from ..client import ClientSession
from ..exceptions import BokehClientError
from . import errors

if TYPE_CHECKING:
    from .config import BokehClient

__all__ = [
    "SessionRegistry",
    "current_config",
    "load_ipython_extension",
    "registry",
    "unload_ipython_extension",
]

log = logging.getLogger(__name__)


class SessionRegistry:
    """The sessions opened by this kernel's magics, by the name they are bound to.

    A name maps to one ``ClientSession``; binding a name again hands back the
    session it replaced, so the caller can close it (the magics do). The registry
    holds strong references: a session stays open until it is closed with
    ``%bokeh_close``, with ``%unload_ext``, or by the user.

    All methods are meant for the kernel's main thread.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, ClientSession] = {}

    def bind(self, name: str, session: ClientSession) -> ClientSession | None:
        """Record ``session`` under ``name``; return the session it replaced, if any."""
        previous = self._by_name.pop(name, None)
        self._by_name[name] = session  # (re)inserted last: latest() sees it
        return previous if previous is not session else None

    def get(self, name: str) -> ClientSession | None:
        """The session bound to ``name``, or None."""
        return self._by_name.get(name)

    def name_of(self, session: object) -> str | None:
        """The name a session (sync, or the async one inside it) is bound to, or None."""
        for name, known in self._by_name.items():
            if session is known or session is known.async_session:
                return name
        return None

    def forget_session(self, session: ClientSession) -> None:
        """Drop every name bound to ``session`` (without closing it)."""
        for name in [n for n, known in self._by_name.items() if known is session]:
            del self._by_name[name]

    def items(self) -> list[tuple[str, ClientSession]]:
        """``(name, session)`` pairs, oldest binding first."""
        return list(self._by_name.items())

    def latest(self) -> ClientSession | None:
        """The most recently bound session, or None."""
        return next(reversed(self._by_name.values()), None)

    def close_all(self) -> list[tuple[str, BokehClientError]]:
        """Close every session and empty the registry.

        Every session is attempted even when one fails; the failures are returned as
        ``(name, error)`` pairs for the caller to report.
        """
        failures: list[tuple[str, BokehClientError]] = []
        while self._by_name:
            name, session = self._by_name.popitem()
            try:
                session.close()
            except BokehClientError as exc:
                failures.append((name, exc))
        return failures

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


#: The registry of this kernel (one per process, like the kernel itself).
registry = SessionRegistry()

_config: BokehClient | None = None


def current_config() -> BokehClient | None:
    """The configuration of the loaded extension, or None when it is not loaded."""
    return _config


def _configurables(shell: object) -> list[object]:
    # InteractiveShell.configurables is a plain list (IPython annotates it loosely).
    configurables = getattr(shell, "configurables", None)
    if not isinstance(configurables, list):
        raise TypeError("the shell has no list of configurables")
    return configurables


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bokeh_nb_client``: register the magics and the configurable.

    Args:
        ipython: the ``InteractiveShell`` IPython passes in.
    """
    global _config
    from IPython.core.interactiveshell import InteractiveShell

    from .config import BokehClient
    from .magics import BokehMagics

    if not isinstance(ipython, InteractiveShell):
        raise TypeError(f"expected an IPython InteractiveShell, got {type(ipython).__name__}")
    config = BokehClient(parent=ipython)
    _configurables(ipython).append(config)
    magics = BokehMagics(ipython, config=config, sessions=registry)
    ipython.register_magics(magics)
    if not errors.install(ipython):
        log.info("another custom exception handler is registered; errors show in full")
    _config = config


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext bokeh_nb_client``: close the magics' sessions, remove the magics.

    Every session in :data:`registry` is closed, even if some fail; failures are
    logged as warnings (the extension is gone either way) and the first one is
    re-raised once everything is unregistered, so it is not lost.
    """
    global _config
    from IPython.core.interactiveshell import InteractiveShell

    from .magics import BokehMagics

    if not isinstance(ipython, InteractiveShell):
        raise TypeError(f"expected an IPython InteractiveShell, got {type(ipython).__name__}")
    from .sessions import forget_closed

    closing = registry.items()
    failures = registry.close_all()
    panel = sys.modules.get(f"{__name__}.panel")
    if panel is not None:  # the status panel was used: stop its live updates and tasks
        panel.close_shared_panel()
    for name, error in failures:
        log.warning("closing session %r failed: %s", name, error)
    for _, session in closing:
        forget_closed(session)  # its views say it was closed
    errors.uninstall(ipython)
    manager = ipython.magics_manager
    if manager is not None:
        for kind in ("line", "cell"):
            table = manager.magics[kind]
            for magic_name in BokehMagics.magics[kind]:
                table.pop(magic_name, None)
        manager.registry.pop(BokehMagics.__name__, None)
    configurables = _configurables(ipython)
    if _config is not None and _config in configurables:
        configurables.remove(_config)
    _config = None
    if failures:
        raise failures[0][1]
