"""Session options: checked once, before any network I/O, then immutable.

Every check names the parameter at fault, so a bad argument fails at the call
that passed it with a ``TypeError`` or ``ValueError``, never later inside a
connect. Secrets (the secret key, cookie values) are kept out of ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any
from urllib.parse import urlsplit

from . import _bokeh
from .reconnect import Reconnect, ReconnectMode, resolve_reconnect

__all__ = ["SessionOptions"]


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The validated options of one session (see ``AsyncClientSession`` for meanings)."""

    session_id: str
    websocket_url: str
    arguments: dict[str, str] | None
    max_message_size: int
    secret_key: bytes | None = field(repr=False)
    signed: bool
    headers: dict[str, str] | None = field(repr=False)
    cookies: dict[str, str] | None = field(repr=False)
    ssl: SSLContext | bool | None
    timeout: float
    token_expiration: int
    reconnect: Reconnect | None

    @classmethod
    def build(
        cls,
        *,
        session_id: object,
        websocket_url: object,
        arguments: object,
        max_message_size: object,
        secret_key: object,
        sign_sessions: object,
        headers: object,
        cookies: object,
        ssl: object,
        timeout: object,
        token_expiration: object,
        reconnect: Reconnect | ReconnectMode | bool | None,
    ) -> SessionOptions:
        """Check every argument and return the options.

        Raises:
            TypeError: an argument has the wrong type.
            ValueError: an argument has an impossible value.
        """
        url = _websocket_url(websocket_url)
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise TypeError(f"max_message_size must be an int, got {max_message_size!r}")
        if max_message_size < 0:
            raise ValueError(
                f"max_message_size must be >= 0 (0 = no limit), got {max_message_size}"
            )
        seconds = _positive_seconds("timeout", timeout)
        if isinstance(token_expiration, bool) or not isinstance(token_expiration, int):
            raise TypeError(f"token_expiration must be an int, got {token_expiration!r}")
        if token_expiration <= 0:
            raise ValueError(f"token_expiration must be > 0 seconds, got {token_expiration}")
        if ssl is not None and not isinstance(ssl, SSLContext | bool):
            raise TypeError("ssl must be an ssl.SSLContext, False, or None")
        if ssl is True:
            ssl = None
        if secret_key is not None and not isinstance(secret_key, str | bytes):
            raise TypeError("secret_key must be a str, bytes, or None")
        if sign_sessions is not None and not isinstance(sign_sessions, bool):
            raise TypeError("sign_sessions must be True, False, or None")
        key, signed = _bokeh.resolve_signing(secret_key, sign_sessions)
        if session_id is None:
            sid = _bokeh.new_session_id(key, signed)
        elif not isinstance(session_id, str):
            raise TypeError(f"session_id must be a str, got {type(session_id).__name__}")
        elif not session_id:
            raise ValueError("session_id must not be empty")
        else:
            sid = session_id
        return cls(
            session_id=sid,
            websocket_url=url,
            arguments=_str_mapping("arguments", arguments),
            max_message_size=max_message_size,
            secret_key=key,
            signed=signed,
            headers=_str_mapping("headers", headers),
            cookies=_str_mapping("cookies", cookies),
            ssl=ssl,
            timeout=seconds,
            token_expiration=token_expiration,
            reconnect=resolve_reconnect(reconnect),
        )


def _websocket_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"websocket_url must be a str, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"websocket_url must start with ws:// or wss://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"websocket_url has no host: {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ValueError(f"websocket_url has an invalid port: {url!r}") from None
    return url


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def _str_mapping(name: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of str to str, got {type(value).__name__}")
    items: dict[Any, Any] = dict(value)
    for key, item in items.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"{name} must map str to str; got {key!r}: {type(item).__name__}")
    return items or None
