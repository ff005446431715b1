"""Typed adapters for the few IPython functions this package calls.

IPython ships ``py.typed`` but leaves these functions unannotated, so under
``mypy --strict`` every call and every decorator would need an ignore. They are
given precise signatures here, once; the rest of :mod:`bokeh_nb_client.jupyter`
imports them from this module. Behaviour is IPython's, unchanged.
"""

# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments
from IPython.display import display as _display
from IPython.display import update_display as _update_display

if TYPE_CHECKING:
    import argparse

    from IPython.core.interactiveshell import InteractiveShell

__all__ = [
    "argument",
    "display",
    "get_ipython",
    "line_magic",
    "magic_arguments",
    "parse_argstring",
    "update_display",
]

F = TypeVar("F", bound=Callable[..., Any])


def magic_arguments() -> Callable[[F], F]:
    """``IPython.core.magic_arguments.magic_arguments()``: start an argument declaration."""
    return cast(Callable[[F], F], _magic_arguments.magic_arguments())


def argument(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``IPython.core.magic_arguments.argument(...)``: declare one argparse argument."""
    return cast(Callable[[F], F], _magic_arguments.argument(*args, **kwargs))


def line_magic(fn: F) -> F:
    """``IPython.core.magic.line_magic``: mark a method of a Magics class as a line magic."""
    return cast(F, _magic.line_magic(fn))


def parse_argstring(magic: Callable[..., Any], line: str) -> argparse.Namespace:
    """Parse ``line`` with the parser the argument declarations of ``magic`` built.

    Raises:
        UsageError: the arguments do not match the declarations.
    """
    return cast("argparse.Namespace", _magic_arguments.parse_argstring(magic, line))


def display(obj: object, *, display_id: str | None = None) -> None:
    """``IPython.display.display`` of one object, optionally under a display id."""
    if display_id is None:
        _display(obj)
    else:
        _display(obj, display_id=display_id)


def update_display(obj: object, *, display_id: str) -> None:
    """``IPython.display.update_display``: replace what was displayed under ``display_id``."""
    _update_display(obj, display_id=display_id)


def get_ipython() -> InteractiveShell | None:
    """The running IPython shell, or None outside IPython."""
    from IPython.core.getipython import get_ipython as _get_ipython

    return _get_ipython()
