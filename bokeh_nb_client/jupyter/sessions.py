"""Which Bokeh sessions this kernel has, and how the kernel closes one.

The one place for both questions:

* which sessions exist (:func:`kernel_sessions`, :func:`find_session`): shared
  by the status panel (its rows), the magics (``%bokeh_close --all``) and the
  live views (the session a view follows). A session is named by the magics'
  registry and by the public names of the notebook namespace; every open
  session of the process is listed, named or not;
* how a kernel session is closed (:func:`close_session`, and
  :func:`forget_closed` for a caller that closed it on its own loop): the
  session closes, the magics' registry forgets it, and its inline views say
  it was closed and drop their connections.

Nothing here imports ipywidgets; only closing touches the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from ..client import ClientSession
from ..session import AsyncClientSession, live_sessions
from ._ipython import get_ipython
from .rendering import SessionRow

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from . import SessionRegistry

__all__ = [
    "RowKind",
    "Steerable",
    "closable_sessions",
    "close_session",
    "find_session",
    "forget_closed",
    "kernel_sessions",
    "kind_of",
    "known_sessions",
    "namespace_sessions",
]

#: A session the panel's buttons can act on.
Steerable = ClientSession | AsyncClientSession
#: "sync" (a ClientSession), "async" (an AsyncClientSession), "-" (not known here).
RowKind = Literal["sync", "async", "-"]


def kind_of(session: Steerable) -> RowKind:
    """ "sync" for a ClientSession, "async" for an AsyncClientSession."""
    return "sync" if isinstance(session, ClientSession) else "async"


def namespace_sessions(shell: InteractiveShell | None) -> list[tuple[str, Steerable]]:
    """``(name, session)`` for each public name of ``shell``'s namespace bound to a session."""
    if shell is None:
        return []
    return [
        (name, value)
        for name, value in list(shell.user_ns.items())
        if not name.startswith("_") and isinstance(value, ClientSession | AsyncClientSession)
    ]


def kernel_sessions(
    known: Mapping[int, ClientSession] | None = None,
    *,
    sessions: SessionRegistry | None = None,
    shell: InteractiveShell | None = None,
) -> list[SessionRow]:
    """The open sessions of this kernel, oldest first, with their names and kinds.

    Names come from the magics' registry and the notebook namespace. A session
    that is bound to no name is listed as kind "-", unless it is one of the
    ``ClientSession`` objects in ``known`` (by ``id`` of its AsyncClientSession).

    Args:
        known: ClientSession wrappers to recognise even when bound to no name.
        sessions: the magics' registry (default: the kernel's,
            :data:`bokeh_nb_client.jupyter.registry`).
        shell: the shell whose namespace names sessions (default: the running one).
    """
    from . import registry

    named = registry if sessions is None else sessions  # (an empty registry is falsy)
    pairs: list[tuple[str, Steerable]] = list(named.items())
    pairs += namespace_sessions(shell if shell is not None else get_ipython())
    wrappers: dict[int, ClientSession] = dict(known or {})
    names: dict[int, tuple[str, ...]] = {}
    for name, session in pairs:
        inner = session.async_session if isinstance(session, ClientSession) else session
        if isinstance(session, ClientSession):
            wrappers[id(inner)] = session
        labels = names.get(id(inner), ())
        if name not in labels:
            names[id(inner)] = (*labels, name)
    rows: list[SessionRow] = []
    for inner in live_sessions():
        wrapper = wrappers.get(id(inner))
        labels = names.get(id(inner), ())
        if wrapper is not None:
            rows.append(SessionRow(wrapper, labels, "sync"))
        else:
            # Bound to a name as an AsyncClientSession, or not bound here at all
            # (for example a ClientSession kept in a list): say only what is known.
            rows.append(SessionRow(inner, labels, "async" if labels else "-"))
    return rows


def known_sessions(sessions: SessionRegistry, shell: InteractiveShell | None) -> list[Steerable]:
    """Sync sessions of the registry and namespace first, then every live async one."""
    found: list[Steerable] = [s for _, s in sessions.items()]
    found += [s for _, s in namespace_sessions(shell)]
    found += live_sessions()
    return found


def closable_sessions(
    sessions: SessionRegistry, shell: InteractiveShell | None
) -> list[tuple[str, ClientSession]]:
    """``(name, session)`` for each open ClientSession named by the registry or namespace."""
    from ..status import SessionState

    seen: set[int] = set()
    targets: list[tuple[str, ClientSession]] = []
    for name, session in [*sessions.items(), *namespace_sessions(shell)]:
        if isinstance(session, ClientSession) and id(session) not in seen:
            if session.status.state is SessionState.CLOSED:
                continue
            seen.add(id(session))
            targets.append((name, session))
    return targets


def find_session(app_url: str, session_id: str) -> AsyncClientSession | None:
    """The open session of this process on ``session_id`` of the app at ``app_url``."""
    return next(
        (
            s
            for s in reversed(live_sessions())
            if s.id == session_id and s.app_url.rstrip("/") == app_url.rstrip("/")
        ),
        None,
    )


def forget_closed(session: Steerable) -> None:
    """After ``session`` was closed: the registry forgets it, its views say it is closed."""
    from . import registry
    from .views import mark_views_closed

    if isinstance(session, ClientSession):
        registry.forget_session(session)
    mark_views_closed(session.app_url, session.id)


def close_session(session: ClientSession) -> None:
    """Close a synchronous session of this kernel, then :func:`forget_closed`.

    Raises:
        BokehClientError: the close failed (the session is forgotten anyway).
    """
    try:
        session.close()
    finally:
        forget_closed(session)
