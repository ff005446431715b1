"""``pull_session_async`` and ``push_session_async``: the async twins of the helpers.

They run on the caller's running loop (in a notebook, the kernel's), so server
changes are applied between cells and during ``await`` with no extra thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._bokeh import Document
from .client import app_websocket_url
from .session import DEFAULT_MAX_MESSAGE_SIZE, AsyncClientSession

__all__ = ["pull_session_async", "push_session_async"]


async def pull_session_async(
    session_id: str | None = None,
    url: str = "default",
    io_loop: object | None = None,
    arguments: Mapping[str, str] | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    *,
    app_path: str | None = None,
    **options: Any,
) -> AsyncClientSession:
    """Open a session on the app at ``url`` (+ ``app_path``) and pull its document."""
    ws_url = app_websocket_url(url, app_path)
    session = AsyncClientSession(
        session_id, ws_url, io_loop, arguments, max_message_size, **options
    )
    try:
        await session.pull()
    except BaseException:
        await session.close()
        raise
    return session


async def push_session_async(
    document: Document,
    session_id: str | None = None,
    url: str = "default",
    io_loop: object | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    *,
    app_path: str | None = None,
    **options: Any,
) -> AsyncClientSession:
    """Open a session on the app at ``url`` and replace its document with ``document``."""
    if not isinstance(document, Document):
        raise TypeError(f"push_session_async needs a bokeh Document, got {type(document).__name__}")
    ws_url = app_websocket_url(url, app_path)
    session = AsyncClientSession(session_id, ws_url, io_loop, None, max_message_size, **options)
    try:
        await session.push(document)
    except BaseException:
        await session.close()
        raise
    return session
