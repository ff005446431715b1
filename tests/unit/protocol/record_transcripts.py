"""Record real Bokeh websocket traffic as JSON Lines transcripts.

Run by hand (not collected by pytest), from the repository root::

    python tests/unit/protocol/record_transcripts.py [--out DIR]

It writes a tiny app to a temporary directory, starts ``bokeh serve`` for it on
127.0.0.1 at a free port, talks to it with a raw aiohttp websocket client (no
bokeh_nb_client code, so the transcripts are an independent reference), and
writes one file per connection into ``tests/transcripts/<bokeh version>/``:

* ``session.jsonl``: ACK, PULL-DOC, SERVER-INFO, a ModelChanged patch, a patch to
  an unknown model id (ERROR reply), a button click sent as a MessageSent
  ``bokeh_event`` (the app's PATCH-DOC arrives before the OK), and a
  ColumnsStreamed patch carrying one binary buffer.
* ``broadcast.jsonl``: a second connection to the same session that pulls, then
  receives the first connection's ColumnsStreamed as a PATCH-DOC with a buffer.
* ``push_doc.jsonl``: a connection to a fresh session that pulls the document and
  pushes a modified copy back (RootRemoved/RootAdded/TitleChanged arrive before
  the OK).

Each line is ``{"dir": "c2s"|"s2c", "kind": "text"|"binary", "data": ...}``, with
binary data in base64. Client message ids are ``c1``, ``c2``, ... per connection.
The server is killed in a ``finally`` block whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import bokeh
from bokeh.core.types import ID
from bokeh.util.token import generate_jwt_token

APP_SOURCE = """\
import numpy as np

from bokeh.io import curdoc
from bokeh.models import Button, ColumnDataSource, Div

div = Div(name="div", text="hello")
btn = Button(name="btn", label="click me")
src = ColumnDataSource(name="src", data={"x": np.arange(4, dtype="float64"), "y": [1, 2, 3, 4]})


def on_click(event):
    div.text = "clicked"


btn.on_event("button_click", on_click)

doc = curdoc()
doc.title = "proto-app"
doc.add_root(div)
doc.add_root(btn)
doc.add_root(src)
"""

APP_NAME = "app"
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Message:
    header: dict[str, Any]
    metadata: Any
    content: Any
    buffers: list[tuple[str, bytes]] = field(default_factory=list)


class RecordingClient:
    """One websocket connection whose every frame is appended to ``lines``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.lines: list[dict[str, str]] = []
        self._next_id = 0

    def new_msgid(self) -> str:
        self._next_id += 1
        return f"c{self._next_id}"

    async def _send_text(self, text: str) -> None:
        self.lines.append({"dir": "c2s", "kind": "text", "data": text})
        await self.ws.send_str(text)

    async def _send_binary(self, data: bytes) -> None:
        encoded = base64.b64encode(data).decode("ascii")
        self.lines.append({"dir": "c2s", "kind": "binary", "data": encoded})
        await self.ws.send_bytes(data)

    async def send(
        self, msgtype: str, content: Any, buffers: list[tuple[str, bytes]] | None = None
    ) -> str:
        """Send one request, framed as bokeh.client frames it; return its msgid."""
        msgid = self.new_msgid()
        header: dict[str, Any] = {"msgid": msgid, "msgtype": msgtype}
        if buffers:
            header["num_buffers"] = len(buffers)
        await self._send_text(json.dumps(header))
        await self._send_text(json.dumps({}))
        await self._send_text(json.dumps(content, separators=(",", ":")))
        for buffer_id, payload in buffers or []:
            await self._send_text(json.dumps({"id": buffer_id}))
            await self._send_binary(payload)
        return msgid

    async def _receive_frame(self) -> str | bytes:
        msg = await self.ws.receive(timeout=TIMEOUT)
        if msg.type is aiohttp.WSMsgType.TEXT:
            self.lines.append({"dir": "s2c", "kind": "text", "data": msg.data})
            text: str = msg.data
            return text
        if msg.type is aiohttp.WSMsgType.BINARY:
            encoded = base64.b64encode(msg.data).decode("ascii")
            self.lines.append({"dir": "s2c", "kind": "binary", "data": encoded})
            data: bytes = msg.data
            return data
        raise RuntimeError(f"unexpected websocket message {msg.type!r}: {msg.data!r}")

    async def receive(self) -> Message:
        """Receive one complete Bokeh message."""
        header = json.loads(await self._receive_frame())
        message = Message(
            header, json.loads(await self._receive_frame()), json.loads(await self._receive_frame())
        )
        for _ in range(header.get("num_buffers", 0)):
            buffer_id = json.loads(await self._receive_frame())["id"]
            payload = await self._receive_frame()
            assert isinstance(payload, bytes)
            message.buffers.append((buffer_id, payload))
        print(f"  s2c {header}")
        return message

    async def receive_reply(self, msgid: str) -> tuple[Message, list[Message]]:
        """Receive messages until the reply to ``msgid``; also return the others."""
        others: list[Message] = []
        while True:
            message = await self.receive()
            if message.header.get("reqid") == msgid:
                return message, others
            others.append(message)

    async def request(
        self, msgtype: str, content: Any, buffers: list[tuple[str, bytes]] | None = None
    ) -> tuple[Message, list[Message]]:
        msgid = await self.send(msgtype, content, buffers)
        print(f"  c2s {msgtype} {msgid}")
        return await self.receive_reply(msgid)

    def write(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            for line in self.lines:
                out.write(json.dumps(line) + "\n")
        print(f"wrote {path} ({len(self.lines)} fragments)")


def root_ids(doc_json: dict[str, Any]) -> dict[str, str]:
    """Map the ``name`` attribute of each root in a DocJson to its model id."""
    return {root["attributes"]["name"]: root["id"] for root in doc_json["roots"]}


async def connect(http: aiohttp.ClientSession, ws_url: str, session_id: str) -> RecordingClient:
    token = generate_jwt_token(ID(session_id), secret_key=None, signed=False, expiration=300)
    ws = await http.ws_connect(ws_url, protocols=("bokeh", token))
    client = RecordingClient(ws)
    ack = await client.receive()
    if ack.header["msgtype"] != "ACK":
        raise RuntimeError(f"expected ACK, got {ack.header}")
    return client


async def wait_for_server(
    http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bokeh serve exited with code {proc.returncode}")
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"bokeh serve did not answer {url} within 60 s")


async def record(port: int, out_dir: Path, proc: subprocess.Popen[bytes]) -> None:
    http_url = f"http://127.0.0.1:{port}/{APP_NAME}"
    ws_url = f"ws://127.0.0.1:{port}/{APP_NAME}/ws"
    async with aiohttp.ClientSession() as http:
        await wait_for_server(http, http_url, proc)

        print("connection A (session.jsonl)")
        a = await connect(http, ws_url, "record-session-1")
        reply, _ = await a.request("PULL-DOC-REQ", {})
        ids = root_ids(reply.content["doc"])
        await a.request("SERVER-INFO-REQ", {})
        changed = {"kind": "ModelChanged", "model": {"id": ids["div"]}, "attr": "text"}
        await a.request("PATCH-DOC", {"events": [{**changed, "new": "from raw client"}]})
        unknown = {"kind": "ModelChanged", "model": {"id": "nope123"}, "attr": "text", "new": "x"}
        reply, _ = await a.request("PATCH-DOC", {"events": [unknown]})
        assert reply.header["msgtype"] == "ERROR", reply.header
        click = {
            "kind": "MessageSent",
            "msg_type": "bokeh_event",
            "msg_data": {
                "type": "event",
                "name": "button_click",
                "values": {"type": "map", "entries": [["model", {"id": ids["btn"]}]]},
            },
        }
        reply, before = await a.request("PATCH-DOC", {"events": [click]})
        assert [m.header["msgtype"] for m in before] == ["PATCH-DOC"], before

        print("connection B (broadcast.jsonl), same session")
        b = await connect(http, ws_url, "record-session-1")
        await b.request("PULL-DOC-REQ", {})

        array = {"type": "bytes", "data": {"id": "buf1"}}
        x = {"type": "ndarray", "array": array, "shape": [2], "dtype": "float64", "order": "little"}
        streamed = {
            "kind": "ColumnsStreamed",
            "model": {"id": ids["src"]},
            "attr": "data",
            "data": {"type": "map", "entries": [["x", x], ["y", [5, 6]]]},
            "rollover": None,
        }
        payload = struct.pack("<2d", 10.0, 11.0)
        await a.request("PATCH-DOC", {"events": [streamed]}, [("buf1", payload)])
        broadcast = await b.receive()
        assert broadcast.header["msgtype"] == "PATCH-DOC", broadcast.header
        assert len(broadcast.buffers) == 1, broadcast.header

        print("connection C (push_doc.jsonl), fresh session")
        c = await connect(http, ws_url, "record-push-1")
        reply, _ = await c.request("PULL-DOC-REQ", {})
        doc = reply.content["doc"]
        doc["title"] = "pushed"
        reply, before = await c.request("PUSH-DOC", {"doc": doc}, reply.buffers)
        assert reply.header["msgtype"] == "OK", reply.content

        for client in (a, b, c):
            await client.ws.close(code=1000, message=b"bye")
        a.write(out_dir / "session.jsonl")
        b.write(out_dir / "broadcast.jsonl")
        c.write(out_dir / "push_doc.jsonl")


def main() -> None:
    default_out = Path(__file__).resolve().parents[2] / "transcripts" / bokeh.__version__
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help="output directory")
    args = parser.parse_args()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    # Unsigned tokens are only accepted by a server that does not sign sessions.
    for name in ("BOKEH_SIGN_SESSIONS", "BOKEH_SECRET_KEY", "BOKEH_SIMPLE_IDS"):
        env.pop(name, None)

    with tempfile.TemporaryDirectory() as tmp:
        app_file = Path(tmp) / f"{APP_NAME}.py"
        app_file.write_text(APP_SOURCE, encoding="utf-8")
        port = free_port()
        command = [sys.executable, "-m", "bokeh", "serve", str(app_file)]
        command += ["--address", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(command, env=env, cwd=tmp)
        try:
            asyncio.run(record(port, out_dir, proc))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
