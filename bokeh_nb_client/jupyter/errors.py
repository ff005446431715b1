"""How expected failures look in a notebook: the user's frames and our one-line error.

A synchronous call that fails in an expected way (connection refused, 404, a
timeout, a closed session: a :class:`~bokeh_nb_client.exceptions.BokehClientError`)
raises on the engine thread and is re-raised in the cell, so IPython's traceback
would run through ``client.py``, ``engine.py``, ``concurrent.futures`` and the
chain of foreign errors we translated (aiohttp's, asyncio's): a hundred lines
that hide the one that matters. An interrupted blocking call has the same shape.

``%load_ext bokeh_nb_client`` therefore registers :func:`show_error` as IPython's
custom exception handler (``InteractiveShell.set_custom_exc``) for
``BokehClientError`` and ``KeyboardInterrupt``: it shows the user's own frames
and our error, without our frames and without the chained foreign errors (they
stay on the exception: ``sys.last_value.__cause__``, ``%debug`` and ``%tb``
still see everything). Protocol errors (``ProtocolError``: a bug here or on the
server) keep IPython's full traceback, and so does anything the handler is not
registered for. The handler is only installed when no other one is, and
removed by ``%unload_ext``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

from ..exceptions import BokehClientError, ProtocolError

__all__ = ["install", "is_ours", "show_error", "uninstall", "user_frames"]

_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep
_STDLIB_INTERNALS = (
    f"{os.sep}concurrent{os.sep}futures{os.sep}",
    f"{os.sep}asyncio{os.sep}",
    f"{os.sep}threading.py",
)


def _internal(filename: str) -> bool:
    return filename.startswith(_PACKAGE) or any(part in filename for part in _STDLIB_INTERNALS)


def user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without the frames of this package, ``concurrent.futures`` and ``asyncio``."""
    frames: list[TracebackType] = []
    while tb is not None:
        if not _internal(tb.tb_frame.f_code.co_filename):
            frames.append(tb)
        tb = tb.tb_next
    trimmed: TracebackType | None = None
    for frame in reversed(frames):
        trimmed = TracebackType(trimmed, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return trimmed


def _passes_through_us(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
            return True
        tb = tb.tb_next
    return False


def _expected(value: BaseException, tb: TracebackType | None) -> bool:
    if isinstance(value, BokehClientError):
        return not isinstance(value, ProtocolError)
    return isinstance(value, KeyboardInterrupt) and _passes_through_us(tb)


def show_error(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    """IPython's custom exception handler (see the module docstring); shows the error."""
    if not _expected(value, tb):
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return []
    cause, suppress = value.__cause__, value.__suppress_context__
    value.__cause__, value.__suppress_context__ = None, True
    try:
        shell.showtraceback((etype, value, user_frames(tb)), tb_offset=tb_offset)
    finally:
        value.__cause__, value.__suppress_context__ = cause, suppress
    return []


_EXCEPTIONS = (BokehClientError, KeyboardInterrupt)


def install(shell: Any) -> bool:
    """Register :func:`show_error` unless another handler is registered; say whether."""
    if shell.custom_exceptions:
        return False
    shell.set_custom_exc(_EXCEPTIONS, show_error)
    return True


def is_ours(shell: Any) -> bool:
    """Whether the shell's custom exception handler is :func:`show_error`."""
    return tuple(shell.custom_exceptions) == _EXCEPTIONS


def uninstall(shell: Any) -> None:
    """Remove :func:`show_error` if it is the shell's handler."""
    if is_ours(shell):
        shell.set_custom_exc((), None)
