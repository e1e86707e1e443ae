"""A loopback peer in its own process, so that the peer's Python threads never compete with the
client being measured for the GIL (on a 2-core machine that noise is larger than the figures).

The peer sets TCP_NODELAY on its connections, as the real servers do (Go's net/http, which Ollama
uses, sets it on every connection). The test peers leave Nagle's algorithm on; with it, a client
that reuses a keep-alive connection waits ~40 ms for a delayed ACK before the first chunk arrives
(measured: 44 ms against 2 ms for a 3-token stream), which would swamp every figure here.

Child side: `python -m bench.peer_process KIND KNOBS_JSON` prints one JSON line (url, api key),
then answers one JSON command per line on stdin. Parent side: `PeerProcess`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class PeerProcess:
    """`PeerProcess("ollama", tokens=20)` — `.url`, `.set(**knobs)`, `.reset()`, `.count(path)`,
    `.expected_text()`, `.stop()`; a context manager."""

    def __init__(self, kind: str, **knobs):
        self.kind = kind
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._proc = subprocess.Popen([sys.executable, "-m", "bench.peer_process", kind, json.dumps(knobs)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(REPO), env=env,
                                      text=True, bufsize=1)
        self._lock = threading.Lock()
        hello = self._read()
        self.url, self.api_key = hello["url"], hello.get("api_key")

    def _read(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.kind} peer process exited (code {self._proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.kind} peer: {reply['error']}")
        return reply

    def _call(self, op: str, **args):
        with self._lock:
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
            return self._read().get("value")

    def set(self, **knobs) -> "PeerProcess":
        self._call("set", knobs=knobs)
        return self

    def reset(self) -> "PeerProcess":
        self._call("reset")
        return self

    def count(self, path: str) -> int:
        """Requests received on this path since the last reset."""
        return self._call("count", path=path)

    def expected_text(self) -> str:
        return self._call("expected_text")

    def connections(self) -> int:
        """TCP connections accepted since the peer started."""
        return self._call("connections")

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self._call("stop")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _child(kind: str, knobs: dict) -> None:
    from tests.peers import AnthropicPeer, OllamaPeer, OpenAIPeer

    cls = {"ollama": OllamaPeer, "anthropic": AnthropicPeer, "openai": OpenAIPeer}[kind]
    cls.Handler.disable_nagle_algorithm = True  # TCP_NODELAY, like the real servers (see above)
    accepted = [0]
    setup = cls.Handler.setup

    def counting_setup(handler):  # one handler per connection: count them (keep-alive reuse shows here)
        accepted[0] += 1
        setup(handler)

    cls.Handler.setup = counting_setup
    peer = cls(**knobs).start()
    out = sys.stdout

    def send(obj) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    send({"url": peer.url, "api_key": getattr(peer, "api_key", None)})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            try:
                if op == "set":
                    peer.set(**command["knobs"])
                    send({"value": None})
                elif op == "reset":
                    peer.reset()
                    send({"value": None})
                elif op == "count":
                    send({"value": len(peer.requests_to(command["path"]))})
                elif op == "connections":
                    send({"value": accepted[0]})
                elif op == "expected_text":
                    send({"value": peer.expected_text()})
                elif op == "stop":
                    send({"value": None})
                    break
                else:
                    send({"error": f"unknown op {op!r}"})
            except Exception as exc:  # report to the parent rather than die silently
                send({"error": repr(exc)})
    finally:
        peer.stop()


if __name__ == "__main__":
    _child(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
