"""Message types, headers, id factories, and the package's import isolation."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

from bokeh_nb_client.protocol import (
    CLIENT_REQUESTS,
    REPLY_TYPE,
    MsgType,
    counter_ids,
    make_header,
)

REPO = Path(__file__).resolve().parents[3]


def test_msgtype_values_are_the_wire_strings() -> None:
    assert [t.value for t in MsgType] == [
        "ACK",
        "OK",
        "ERROR",
        "PATCH-DOC",
        "PULL-DOC-REQ",
        "PULL-DOC-REPLY",
        "PUSH-DOC",
        "SERVER-INFO-REQ",
        "SERVER-INFO-REPLY",
    ]
    assert MsgType("PATCH-DOC") is MsgType.PATCH_DOC
    assert f"{MsgType.PUSH_DOC}" == "PUSH-DOC"


def test_every_client_request_has_a_reply_type() -> None:
    assert set(REPLY_TYPE) == CLIENT_REQUESTS
    assert REPLY_TYPE[MsgType.PATCH_DOC] is MsgType.OK


def test_make_header() -> None:
    assert make_header(MsgType.PULL_DOC_REQ, "c1") == {"msgid": "c1", "msgtype": "PULL-DOC-REQ"}
    header = make_header(MsgType.OK, "c2", reqid="p5")
    assert header == {"msgid": "c2", "msgtype": "OK", "reqid": "p5"}
    assert type(header["msgtype"]) is str


def test_counter_ids_are_unique_across_threads() -> None:
    next_id = counter_ids()
    seen: list[str] = []

    def worker() -> None:
        seen.extend(next_id() for _ in range(2000))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 16_000


def test_importing_the_protocol_imports_no_io_or_bokeh() -> None:
    # The parent package is stubbed so that this checks the protocol package itself,
    # whatever bokeh_nb_client/__init__.py chooses to import.
    code = (
        "import sys, types\n"
        "parent = types.ModuleType('bokeh_nb_client')\n"
        f"parent.__path__ = [{str(REPO / 'bokeh_nb_client')!r}]\n"
        "sys.modules['bokeh_nb_client'] = parent\n"
        "import bokeh_nb_client.protocol\n"
        "banned = ('asyncio', 'aiohttp', 'bokeh', 'tornado', 'numpy')\n"
        "print(','.join(m for m in banned if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_protocol_modules_import_only_the_stdlib_and_exceptions() -> None:
    for path in sorted((REPO / "bokeh_nb_client" / "protocol").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:  # sibling modules of the protocol package
                    continue
                if node.level == 2:
                    assert node.module == "exceptions", f"{path.name}: from ..{node.module}"
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                assert top in sys.stdlib_module_names, f"{path.name} imports {name}"
