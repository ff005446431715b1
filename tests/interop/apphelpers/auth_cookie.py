"""An ``--auth-module`` for ``bokeh serve`` that trusts a cookie or a header.

A request is authenticated when it carries a ``user`` cookie or an ``X-User``
header; the value becomes the user name. Anything else is refused, which on the
websocket means the server aborts the connection after the 101 (PROTOCOL.md §1.8).
Pass it as ``extra_args=("--auth-module", str(APPHELPERS_DIR / "auth_cookie.py"))``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_user", "login_url"]

#: Where tornado redirects unauthenticated page requests. Nothing is served here.
login_url = "/login"


def get_user(request_handler: Any) -> str | None:
    """Return the user named by the ``user`` cookie or the ``X-User`` header.

    Args:
        request_handler: The tornado ``RequestHandler`` of the request.

    Returns:
        The user name, or ``None`` when the request names no user.
    """
    cookie = request_handler.get_cookie("user")
    if cookie:
        return str(cookie)
    header = request_handler.request.headers.get("X-User")
    return str(header) if header else None
