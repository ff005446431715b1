"""Finding secrets where they must not be: the text users, logs and tools get to see.

:class:`LeakReport` searches texts for secret values (given by a callable, so that
tokens minted during the test count as soon as they exist), records where each
one showed up with some context, and fails listing all of them at once.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping

from bokeh_nb_client import ClientSession, SessionStatus

__all__ = ["LeakReport", "exception_chain"]


class LeakReport:
    """Collects where any secret showed up; ``assert_clean`` fails listing all."""

    def __init__(self, needles: Callable[[], Mapping[str, str]]) -> None:
        """``needles()`` returns name -> secret text; it is asked again at each check."""
        self._needles = needles
        self.findings: list[str] = []
        self.places = 0

    def check(self, where: str, text: str) -> None:
        """Record every secret that occurs in ``text`` (found at ``where``)."""
        self.places += 1
        for name, value in self._needles().items():
            if value in text:
                start = text.index(value)
                context = text[max(0, start - 60) : start + len(value) + 20]
                self.findings.append(f"{name} in {where}: ...{context}...")

    def check_session(self, where: str, session: ClientSession, *, url: bool = True) -> None:
        """The session's repr/str (sync and async), error detail, status and URL.

        ``url=False`` leaves out the ``url`` property, which returns what the
        caller passed in (for URLs that carry credentials on purpose).
        """
        self.check(f"repr({where})", repr(session))
        self.check(f"str({where})", str(session))
        self.check(f"repr({where}.async_session)", repr(session.async_session))
        self.check(f"{where}.error_detail", session.error_detail)
        if url:
            self.check(f"{where}.url", session.url)
        self.check_status(f"{where}.status", session.status)

    def check_status(self, where: str, status: SessionStatus) -> None:
        """A status snapshot: its repr, and every field (and ``extra`` item) alone."""
        self.check(f"repr({where})", repr(status))
        for field in dataclasses.fields(status):
            value = getattr(status, field.name)
            self.check(f"{where}.{field.name}", f"{value!s} {value!r}")
            if isinstance(value, dict):
                for key, item in value.items():
                    self.check(f"{where}.{field.name}[{key!r}]", f"{key!s} {item!s} {item!r}")

    def check_logs(self, records: list[logging.LogRecord]) -> None:
        """Log records: the formatted message and any rendered traceback."""
        formatter = logging.Formatter()
        for record in records:
            where = f"log record {record.name}:{record.levelname}"
            self.check(where, record.getMessage())
            if record.exc_info:
                self.check(f"{where} traceback", formatter.formatException(record.exc_info))

    def check_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        """Recorded warnings: their messages."""
        for item in caught:
            self.check(f"warning {item.category.__name__}", str(item.message))

    def check_exception(self, where: str, exc: BaseException, *, reprs_of_chain: bool) -> None:
        """An exception: str, repr, rendered traceback, and str (and repr) of its chain."""
        self.check(f"str({where})", str(exc))
        self.check(f"repr({where})", repr(exc))
        self.check(f"rendered traceback of {where}", "".join(traceback.format_exception(exc)))
        for depth, link in enumerate(exception_chain(exc)):
            name = f"{where} chain[{depth}] {type(link).__name__}"
            self.check(f"str({name})", str(link))
            if reprs_of_chain:
                self.check(f"repr({name})", repr(link))

    def assert_clean(self) -> None:
        """Fail listing every finding; also fail if nothing was checked at all."""
        assert self.places > 0
        assert not self.findings, "secrets leaked:\n" + "\n".join(self.findings)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception chained to it (causes and contexts), each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend(item for item in (link.__cause__, link.__context__) if item is not None)
