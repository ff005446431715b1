"""Warnings that point at the user's code, not at ours.

A warning issued deep inside the package (or inside the asyncio loop that a
blocking call runs while it waits) would otherwise name a line of ours, which
tells the user nothing and defeats ``warnings`` filters by module. Python 3.12's
``skip_file_prefixes`` does this for ``warnings.warn``; this module does the same
on 3.11 too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import warnings
from pathlib import Path

__all__ = ["warn_at_caller"]

_SKIPPED = tuple(
    {
        str(directory) + os.sep
        for module in (sys.modules[__name__.rpartition(".")[0]], asyncio, concurrent.futures)
        if module.__file__ is not None
        for directory in (Path(module.__file__).parent, Path(module.__file__).resolve().parent)
    }
)


def _internal(filename: str) -> bool:
    return filename.startswith(_SKIPPED)


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the innermost frame outside this package (and asyncio).

    Called while a blocking call of the user waits (the sync API), that frame is
    the user's call; for the async API it is the user's ``await``.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel of ``frame``: 1 would be this function
    while frame.f_back is not None and _internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
