"""bokeh_nb_client: a Bokeh server client that works in Jupyter.

The synchronous API is a drop-in for ``bokeh.client`` (``ClientSession``,
``pull_session``, ``push_session``, ``show_session``) that also works inside a
notebook cell; ``AsyncClientSession``, ``pull_session_async`` and
``push_session_async`` are its async twin for ``await``. In IPython,
``%load_ext bokeh_nb_client`` adds the ``%bokeh_*`` magics.

Importing this package switches bokeh to globally unique model ids in this
process (as ``BOKEH_SIMPLE_IDS=no``), so models created here never collide with
the server's; set ``BOKEH_SIMPLE_IDS`` yourself to override.
"""

from __future__ import annotations

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
from .exceptions import BokehClientError
from .session import AsyncClientSession
from .status import SessionState, SessionStatus

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SERVER_HTTP_URL",
    "DEFAULT_SERVER_WEBSOCKET_URL",
    "DEFAULT_SESSION_ID",
    "AsyncClientSession",
    "BokehClientError",
    "ClientSession",
    "SessionState",
    "SessionStatus",
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
