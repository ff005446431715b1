"""A small driver for a real ipykernel, on top of jupyter_client's blocking client.

``KernelDriver.execute(code)`` runs a cell and returns what it produced (stdout,
stderr, display bundles, the error, the reply's payload). ``submit(code)`` starts a
cell without waiting, so a test can act while the cell is still busy
(``is_busy``) and collect it later (``collect``). ``wait_for_stream(text)`` blocks
on the IOPub channel until some output containing ``text`` arrives, whoever
printed it: a background task or a document callback running while the kernel
is idle.

Every wait is on a channel message with a timeout; nothing here sleeps.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

__all__ = ["CellError", "CellResult", "KernelDriver", "running_kernel"]

DEFAULT_TIMEOUT = 30.0


@dataclass
class CellResult:
    """Everything one execution produced."""

    msg_id: str
    status: str = "pending"
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    payload: list[dict[str, Any]] = field(default_factory=list)
    idle: bool = False

    def text(self, mime: str = "text/plain") -> str:
        """All display bundles' ``mime`` parts, joined by newlines."""
        return "\n".join(str(d[mime]) for d in self.displays if mime in d)


class CellError(AssertionError):
    """A cell raised when the test expected it to succeed."""


class KernelDriver:
    """Runs code in one kernel and sorts its IOPub messages by the cell they belong to."""

    def __init__(self, manager: KernelManager, client: BlockingKernelClient) -> None:
        self.manager = manager
        self.client = client
        self._results: dict[str, CellResult] = {}
        #: every chunk of stream output, in arrival order (cells, tasks, callbacks)
        self.background: list[str] = []
        self._matched = 0

    # -- running cells ---------------------------------------------------------------

    def submit(self, code: str, subshell_id: str | None = None) -> str:
        """Start executing ``code`` (in a subshell, if given); return its msg_id at once."""
        if subshell_id is None:
            msg_id: str = self.client.execute(code, store_history=True, allow_stdin=False)
        else:
            content = {"code": code, "silent": False, "store_history": False}
            msg = self.client.session.msg("execute_request", content)
            msg["header"]["subshell_id"] = subshell_id
            self.client.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        self._results[msg_id] = CellResult(msg_id)
        return msg_id

    def collect(self, msg_id: str, timeout: float = DEFAULT_TIMEOUT) -> CellResult:
        """Wait until the cell ``msg_id`` is done (idle and replied); return its result."""
        deadline = time.monotonic() + timeout
        result = self._results[msg_id]
        while not result.idle:
            self._pump(deadline, f"cell {msg_id} to finish")
        while result.status == "pending":
            remaining = deadline - time.monotonic()
            try:
                reply = self.client.get_shell_msg(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise TimeoutError(f"no execute_reply for {msg_id} within {timeout} s") from None
            parent = reply["parent_header"].get("msg_id")
            if parent in self._results:
                self._results[parent].status = reply["content"]["status"]
                self._results[parent].payload = reply["content"].get("payload", [])
        return result

    def execute(
        self, code: str, timeout: float = DEFAULT_TIMEOUT, *, allow_error: bool = False
    ) -> CellResult:
        """Run ``code`` and return its result; raise ``CellError`` if it failed, unless allowed."""
        result = self.collect(self.submit(code), timeout)
        if result.error is not None and not allow_error:
            trace = "\n".join(result.error.get("traceback", []))
            raise CellError(f"cell failed:\n{code}\n--- {result.error['ename']}: {trace}")
        return result

    def is_busy(self, msg_id: str) -> bool:
        """True while the cell ``msg_id`` has not gone idle (reads what has arrived, no wait)."""
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0)
            except queue.Empty:
                break
            self._sort(msg)
        return not self._results[msg_id].idle

    def wait_for_stream(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Block until stream output containing ``text`` has arrived, from any source.

        Output that arrived earlier, but after the previous match, counts too: the
        search resumes where the last ``wait_for_stream`` stopped.

        Returns:
            The stream chunk that contained it.
        """
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._matched, len(self.background)):
                if text in self.background[index]:
                    self._matched = index + 1
                    return self.background[index]
            self._pump(deadline, f"output containing {text!r}")

    def kernel_info(self) -> dict[str, Any]:
        """The kernel's ``kernel_info_reply`` content."""
        msg_id = self.client.kernel_info()
        while True:
            reply = self.client.get_shell_msg(timeout=DEFAULT_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = reply["content"]
                return content

    def create_subshell(self) -> str:
        """Create a kernel subshell (JEP 91) on the control channel; return its id."""
        request = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(request)
        while True:
            reply = self.client.get_control_msg(timeout=DEFAULT_TIMEOUT)
            if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                subshell_id: str = reply["content"]["subshell_id"]
                return subshell_id

    def send_comm_msg(
        self, comm_id: str, data: dict[str, Any], subshell_id: str | None = None
    ) -> None:
        """Send a ``comm_msg`` as a front end does (optionally to a subshell)."""
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.client.shell_channel.send(msg)

    # -- internals -------------------------------------------------------------------

    def _pump(self, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out waiting for {what}")
        try:
            msg = self.client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(f"timed out waiting for {what}") from None
        self._sort(msg)

    def _sort(self, msg: dict[str, Any]) -> None:
        parent = msg["parent_header"].get("msg_id")
        kind = msg["msg_type"]
        content = msg["content"]
        result = self._results.get(parent)
        if kind == "stream":
            # Output printed while the kernel is idle is attributed to the last cell
            # (or to none); record all stream text where wait_for_stream can see it.
            self.background.append(content["text"])
        if result is None:
            return
        if kind == "status" and content["execution_state"] == "idle":
            result.idle = True
        elif kind == "stream" and not result.idle:
            if content["name"] == "stdout":
                result.stdout += content["text"]
            else:
                result.stderr += content["text"]
        elif kind in ("display_data", "execute_result", "update_display_data"):
            result.displays.append(content["data"])
        elif kind == "error":
            result.error = content


@contextmanager
def running_kernel(
    kernel_name: str = "python3", env: dict[str, str] | None = None
) -> Iterator[KernelDriver]:
    """Start a kernel (inheriting ``os.environ`` plus ``env``), yield a driver, shut it down."""
    manager = KernelManager(kernel_name=kernel_name)
    manager.start_kernel(env=env) if env is not None else manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield KernelDriver(manager, client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
