"""A real ipykernel, started through jupyter_client, and the iopub messages of each execution."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from queue import Empty

from jupyter_client.manager import KernelManager


@dataclass
class Execution:
    msg_id: str
    messages: list = field(default_factory=list)  # (arrival time, iopub message) for this request
    reply: dict | None = None

    def of_type(self, *types: str) -> list[dict]:
        return [m for _, m in self.messages if m["msg_type"] in types]

    @property
    def displays(self) -> list[dict]:
        return self.of_type("display_data", "update_display_data")

    @property
    def final_text(self) -> str:
        """The plain text of the last display (an answer: its text, then `— footer`)."""
        return self.displays[-1]["content"]["data"]["text/plain"]

    @property
    def final_html(self) -> str:
        return self.displays[-1]["content"]["data"]["text/html"]

    # answers were published as text/markdown before model output was treated as untrusted (issue
    # 22); they are inert HTML plus plain text now, and this older name reads the plain text
    final_markdown = final_text

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr")

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout")

    @property
    def errors(self) -> list[dict]:
        return [m["content"] for m in self.of_type("error")]

    def everything(self) -> str:
        """All iopub content and the reply as text, for leak checks."""
        return repr([m["content"] for _, m in self.messages]) + repr(self.reply)


class Kernel:
    def __init__(self, env: dict[str, str], cwd: str):
        self.manager = KernelManager(kernel_name="python3")
        argv0 = self.manager.kernel_spec.argv[0]
        if argv0 not in ("python", "python3", "{python}") and os.path.realpath(argv0) != os.path.realpath(sys.executable):
            # the kernelspec must run this environment's Python, where inference_magics is installed
            self.manager.kernel_spec.argv[0] = sys.executable
        self.manager.start_kernel(env={**os.environ, **env}, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.comm_messages: list[dict] = []  # widget traffic, whatever request it belongs to

    def start(self, code: str) -> Execution:
        return Execution(self.client.execute(code, allow_stdin=False))

    def collect(self, execution: Execution, timeout: float = 60, until=None) -> Execution:
        """Read iopub until the kernel is idle for this request (or `until(execution)` is true)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self._next_iopub()
            if msg is None or msg["parent_header"].get("msg_id") != execution.msg_id:
                continue
            execution.messages.append((time.monotonic(), msg))
            if until is not None and until(execution):
                return execution
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                execution.reply = self._reply_to(execution.msg_id)
                return execution
        raise TimeoutError(f"the kernel did not finish within {timeout} s")

    def _reply_to(self, msg_id: str) -> dict:
        """The shell reply to this request. Others are skipped: wait_for_ready may have sent several
        kernel_info requests on a busy machine, and their late replies share the shell channel."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]
        raise TimeoutError(f"no shell reply to {msg_id}")

    def run(self, code: str, timeout: float = 60) -> Execution:
        return self.collect(self.start(code), timeout)

    def send_comm(self, comm_id: str, content: dict) -> None:
        """What a widget's view sends: a custom message to its model in the kernel."""
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id,
                                                   "data": {"method": "custom", "content": content}})
        self.client.shell_channel.send(msg)

    def widget_states(self, comm_id: str, until, timeout: float = 30) -> list[dict]:
        """Read iopub until `until(states)` holds; returns every state update sent for this widget."""
        deadline = time.monotonic() + timeout
        while True:
            states = [m["content"]["data"]["state"] for m in self.comm_messages
                      if m["content"].get("comm_id") == comm_id and m["content"].get("data", {}).get("method") == "update"]
            if until(states):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"widget {comm_id} did not reach the expected state in {timeout} s")
            self._next_iopub()

    def _next_iopub(self) -> dict | None:
        """One iopub message (None after a short wait); widget traffic is kept whatever its parent."""
        try:
            msg = self.client.get_iopub_msg(timeout=0.2)
        except Empty:
            return None
        if msg["msg_type"].startswith("comm_"):
            self.comm_messages.append(msg)
        return msg

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
