"""Reconnect policies: when and how a session comes back after losing its server.

A session with a policy reacts to an unexpected end of its connection (server
restarted or killed, network cut; not a ``close()``) like this:

1. Its state becomes RECONNECTING. Requests already in flight fail with the
   ``ConnectionClosed`` error (they may or may not have reached the server).
   Requests made from now on wait for the reconnect for at most
   ``request_grace`` seconds (default 3: a ``bokeh serve --dev`` reload takes 1
   to 3 s), then raise ``ServerUnreachable``, which says since when the server is
   unreachable and until when the session keeps reconnecting.
2. It reconnects with capped exponential backoff and a freshly minted token,
   for at most ``give_up_after`` seconds; then it ends with the last error
   (state ERROR), and waiting requests and ``loop_until_closed()`` return with it.
3. On success it resynchronises:

   * ``"pull"``: the server's document wins. The session re-pulls into the same
     Document object. Local changes the server had not acknowledged are discarded
     and listed in a ``ChangesDiscardedWarning`` and in ``discarded_changes``.
   * ``"push"``: the client's document wins. The session pushes its Document,
     which contains every local change, including those made while disconnected.
   * ``"auto"`` (the default): ``"push"`` if the session's last document operation
     was a push, else ``"pull"``. A session from ``pull_session`` mirrors the
     server; one from ``push_session`` restores what it pushed.

   A reconnect may land on a brand-new server session (the server restarted, or
   the session expired 15 to 32 s after its last connection left; the app then
   runs again with new model ids): the session detects it (none of the old root
   ids exist any more), says so in its status and log, and applies the policy.

Why "auto" is the default: a notebook user watching a dashboard wants the view to
come back by itself when ``bokeh serve --dev`` reloads the app, and a user who
pushed a document wants it restored on a restarted server. Nothing is dropped
silently either way. ``reconnect=None`` (or False) gives ``bokeh.client``'s
behaviour: the session ends with the connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Reconnect", "ReconnectMode", "describe_events", "resolve_reconnect"]

ReconnectMode = Literal["auto", "pull", "push"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """A reconnect policy (see the module docstring).

    Args:
        mode: "auto", "pull" or "push".
        initial_delay: seconds before the second attempt (the first is immediate).
        max_delay: cap of the exponential backoff, in seconds.
        give_up_after: seconds of failed attempts before the session ends.
        request_grace: seconds a request made while reconnecting waits for the
            reconnect before it raises ``ServerUnreachable`` (never more than the
            session's ``timeout``).
    """

    mode: ReconnectMode = "auto"
    initial_delay: float = 0.1
    max_delay: float = 5.0
    give_up_after: float = 60.0
    request_grace: float = 3.0

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "pull", "push"):
            raise ValueError(f"reconnect mode must be 'auto', 'pull' or 'push', not {self.mode!r}")
        for name in ("initial_delay", "max_delay", "give_up_after", "request_grace"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Reconnect.{name} must be a number >= 0, got {value!r}")

    def delays(self) -> Iterator[float]:
        """Seconds to wait before each attempt: 0, then doubling up to ``max_delay``."""
        yield 0.0
        delay = self.initial_delay
        while True:
            yield delay
            delay = min(delay * 2, self.max_delay)


def resolve_reconnect(value: Reconnect | ReconnectMode | bool | None) -> Reconnect | None:
    """Turn the ``reconnect=`` argument into a policy (None means off).

    Raises:
        ValueError / TypeError: for anything else.
    """
    if value is None or value is False:
        return None
    if value is True:
        return Reconnect()
    if isinstance(value, Reconnect):
        return value
    if isinstance(value, str):
        return Reconnect(mode=value)
    raise TypeError(
        "reconnect must be None/False, True, 'auto', 'pull', 'push' or a Reconnect(...), "
        f"not {type(value).__name__}"
    )


def describe_events(events: list[Any], names: Mapping[str, str] | None = None) -> list[str]:
    """Short human descriptions of encoded patch events, for discard reports.

    ``names`` maps model ids to what a user knows them by (``Slider 'volume'
    (p1024)``); models missing from it are shown by id.
    """
    names = names or {}
    out: list[str] = []
    for event in events:
        if not isinstance(event, dict):
            out.append(repr(event)[:80])
            continue
        kind = event.get("kind", "?")
        model = event.get("model")
        model_id = model.get("id", "?") if isinstance(model, dict) else None
        if model_id is not None:
            model_id = names.get(model_id, model_id)
        attr = event.get("attr")
        if kind == "ColumnsStreamed":
            data = event.get("data", {})
            entries = data.get("entries", []) if isinstance(data, dict) else []
            rows = len(entries[0][1]) if entries and isinstance(entries[0][1], list) else "?"
            out.append(f"ColumnsStreamed {model_id}.{attr} ({rows} rows)")
        elif kind == "TitleChanged":
            out.append(f"TitleChanged {event.get('title')!r}")
        elif model_id is not None:
            out.append(f"{kind} {model_id}.{attr}" if attr else f"{kind} {model_id}")
        else:
            out.append(str(kind))
    return out
