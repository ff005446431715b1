"""bokeh_nb_client: a Bokeh server client that works in Jupyter.

The synchronous API is a drop-in for ``bokeh.client`` (``ClientSession``,
``pull_session``, ``push_session``, ``show_session``) that also works inside a
notebook cell; ``AsyncClientSession``, ``pull_session_async`` and
``push_session_async`` are its async twin for ``await``. In IPython,
``%load_ext bokeh_nb_client`` adds the ``%bokeh_*`` magics.

The first use of the session API (``from bokeh_nb_client import pull_session``,
``%load_ext bokeh_nb_client``) switches bokeh to globally unique model ids in
this process (as ``BOKEH_SIMPLE_IDS=no``), so models created here never collide
with the server's; set ``BOKEH_SIMPLE_IDS`` yourself to override.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from .exceptions import BokehClientError

if _typing.TYPE_CHECKING:
    from .async_api import pull_session_async, push_session_async
    from .client import (
        DEFAULT_SERVER_HTTP_URL,
        DEFAULT_SERVER_WEBSOCKET_URL,
        DEFAULT_SESSION_ID,
        ClientSession,
        pull_session,
        push_session,
        show_session,
    )
    from .jupyter.panel import StatusPanel
    from .reconnect import Reconnect
    from .session import AsyncClientSession
    from .status import SessionState, SessionStatus

# Public names are imported on first use (PEP 562), so that importing the
# stdlib-only ``bokeh_nb_client.protocol`` does not load bokeh, aiohttp or asyncio.
_LAZY = {
    "pull_session_async": "async_api",
    "push_session_async": "async_api",
    "DEFAULT_SERVER_HTTP_URL": "client",
    "DEFAULT_SERVER_WEBSOCKET_URL": "client",
    "DEFAULT_SESSION_ID": "client",
    "ClientSession": "client",
    "pull_session": "client",
    "push_session": "client",
    "show_session": "client",
    "Reconnect": "reconnect",
    "AsyncClientSession": "session",
    "SessionState": "status",
    "SessionStatus": "status",
    "StatusPanel": "jupyter.panel",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bokeh_nb_client' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SERVER_HTTP_URL",
    "DEFAULT_SERVER_WEBSOCKET_URL",
    "DEFAULT_SESSION_ID",
    "AsyncClientSession",
    "BokehClientError",
    "ClientSession",
    "Reconnect",
    "SessionState",
    "SessionStatus",
    "StatusPanel",
    "pull_session",
    "pull_session_async",
    "push_session",
    "push_session_async",
    "show_session",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext bokeh_nb_client``: register the magics."""
    from .jupyter import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext bokeh_nb_client``: remove the magics and close this kernel's sessions."""
    from .jupyter import unload_ipython_extension as unload

    unload(ipython)
