"""The error tree: its shape is the one drawn in the module docstring."""

from __future__ import annotations

import builtins
import inspect
import re

import pytest

from bokeh_nb_client import exceptions
from bokeh_nb_client.exceptions import (
    BokehClientError,
    ConnectError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRejected,
    LocalProtocolError,
    MessageTooBig,
    ProtocolError,
    RemoteProtocolError,
    ServerError,
    SessionStateError,
    Timeout,
    TransportError,
)

# "├── Name (Builtin, ...)   comment": depth from the column of the name.
_LINE = re.compile(r"^(?P<lead>[\s│├└─]*)(?P<name>[A-Z]\w+)(?:\s+\((?P<bases>[\w, ]+)\))?")


def drawn_tree() -> dict[str, tuple[str | None, list[str]]]:
    """name -> (drawn parent, builtin bases in parentheses), from the docstring."""
    doc = exceptions.__doc__
    assert doc is not None
    _, _, after = doc.partition("::\n")
    block = []
    for line in after.splitlines():
        if line and not line.startswith("    "):
            break  # the end of the literal block
        block.append(line[4:])
    tree: dict[str, tuple[str | None, list[str]]] = {}
    stack: list[tuple[int, str]] = []
    for line in block:
        match = _LINE.match(line)
        if match is None:
            continue  # blank, or a comment continued on the next line
        depth = len(match["lead"])
        name = match["name"]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        bases = [b.strip() for b in (match["bases"] or "").split(",") if b.strip()]
        tree[name] = (parent, bases)
        stack.append((depth, name))
    return tree


def defined_classes() -> dict[str, type[BaseException]]:
    return {
        name: value
        for name, value in vars(exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
    }


def test_docstring_draws_every_class_once() -> None:
    assert set(drawn_tree()) == set(defined_classes())


@pytest.mark.parametrize("name", sorted(defined_classes()))
def test_each_class_has_the_drawn_parent_and_builtin_bases(name: str) -> None:
    parent, drawn_builtins = drawn_tree()[name]
    cls = defined_classes()[name]
    ours = [base for base in cls.__bases__ if base.__module__ == exceptions.__name__]
    if parent is None:
        assert ours == []
        assert cls.__bases__ == tuple(getattr(builtins, b) for b in drawn_builtins or ["Exception"])
    else:
        assert [base.__name__ for base in ours] == [parent]
    for builtin in drawn_builtins:
        assert issubclass(cls, getattr(builtins, builtin))
    assert cls.__doc__, f"{name} needs a docstring saying when it is raised"


def test_all_matches_the_classes_defined() -> None:
    assert sorted(exceptions.__all__) == sorted(defined_classes())
    assert exceptions.__all__ == sorted(exceptions.__all__)


def test_builtin_bases_keep_old_except_clauses_working() -> None:
    # bokeh.client raised OSError for connect failures, RuntimeError otherwise.
    assert issubclass(ConnectError, OSError)
    assert issubclass(HandshakeRejected, OSError)
    assert issubclass(ConnectionClosed, RuntimeError)
    assert issubclass(ConnectionClosed, OSError)
    assert issubclass(Timeout, TimeoutError)
    assert issubclass(ServerError, RuntimeError)
    assert issubclass(SessionStateError, RuntimeError)
    for cls in (
        TransportError,
        ConnectionClosedOK,
        ConnectionClosedError,
        MessageTooBig,
        ProtocolError,
        LocalProtocolError,
        RemoteProtocolError,
    ):
        assert issubclass(cls, BokehClientError)


def test_attributes_are_kept() -> None:
    closed = ConnectionClosedError("lost", code=1006, reason="")
    assert (closed.code, closed.reason, str(closed)) == (1006, "", "lost")
    rejected = HandshakeRejected("no", url="ws://h/ws", status=403)
    assert (rejected.url, rejected.status) == ("ws://h/ws", 403)
    timeout = Timeout("PULL-DOC-REQ", 2.5)
    assert (timeout.operation, timeout.seconds) == ("PULL-DOC-REQ", 2.5)
    assert "2.5" in str(timeout)
    too_big = MessageTooBig("big", limit=10, size=11)
    assert (too_big.limit, too_big.size) == (10, 11)
    error = ServerError("bad", text="t", traceback="tb", reqid="c1")
    assert (error.text, error.traceback, error.reqid) == ("t", "tb", "c1")


def test_oserror_base_does_not_mangle_messages_or_attributes() -> None:
    # OSError treats a (errno, strerror) pair specially; ours take one message.
    error = ConnectError("cannot connect to ws://h/ws", url="ws://h/ws")
    assert str(error) == "cannot connect to ws://h/ws"
    assert error.args == ("cannot connect to ws://h/ws",)
    assert error.errno is None
