"""Instructions per token, counted by valgrind's cachegrind: the one measure of our streaming layers
that this VM's speed spells cannot move.

A child process streams a recorded Ollama reply (chunks shaped as the Ollama peer sends them, one
token each, served from memory by httpx.MockTransport: no network and no timing) through
`im.stream()` or through the official client, once and then three times. What the extra two runs
cost, per token, is one token's cost: start-up and imports cancel out. PYTHONHASHSEED is fixed so
that dicts and sets lay out the same in every run. The history is off: its write runs behind the
stream on another thread (the timed rows wait for it untimed), and a count of the whole process
would add it, ~6,900 instructions a token for this 189 kB answer.

`python -m bench.instructions ours|raw RUNS [TOKENS]` is the child.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from .common import OLLAMA_MODEL, PROMPT, REPO

URL = "http://127.0.0.1:9"  # never dialled: the transport answers from memory


def per_token(tokens: int) -> dict[str, float] | None:
    """{"ours": instructions a token, "raw": ...}, or None without valgrind. Two children at a time."""
    if shutil.which("valgrind") is None:
        return None
    runs = {(variant, n): _start(variant, n, tokens) for variant in ("ours", "raw") for n in (1, 3)}
    counted = {key: _instructions(child) for key, child in runs.items()}
    return {variant: (counted[variant, 3] - counted[variant, 1]) / 2 / tokens for variant in ("ours", "raw")}


def _start(variant: str, runs: int, tokens: int):
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                             sys.executable, "-m", "bench.instructions", variant, str(runs), str(tokens)],
                            cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _instructions(child) -> int:
    _, err = child.communicate()
    found = re.search(r"I\s+refs:\s+([\d,]+)", err)
    if child.returncode != 0 or found is None:
        raise RuntimeError(f"cachegrind run failed ({child.returncode}): {err[-500:]}")
    return int(found.group(1).replace(",", ""))


def _pieces(tokens: int) -> list[str]:
    return [f"word{i}" if i == 0 else f" word{i}" for i in range(tokens)]  # what the Ollama peer answers


def _recorded(tokens: int) -> list[bytes]:
    def line(obj: dict) -> bytes:
        return (json.dumps(obj) + "\n").encode()

    lines = [line({"model": OLLAMA_MODEL, "created_at": "2026-11-30T00:00:00.000000Z",
                   "message": {"role": "assistant", "content": piece}, "done": False}) for piece in _pieces(tokens)]
    lines.append(line({"model": OLLAMA_MODEL, "created_at": "2026-11-30T00:00:00.000000Z",
                       "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                       "total_duration": 1, "load_duration": 1, "prompt_eval_count": 5, "prompt_eval_duration": 1,
                       "eval_count": tokens, "eval_duration": 1}))
    return lines


def _child(variant: str, runs: int, tokens: int) -> None:
    import httpx
    import ollama

    lines, expected = _recorded(tokens), "".join(_pieces(tokens))

    class Recorded(httpx.SyncByteStream):
        def __iter__(self):
            return iter(lines)  # one HTTP chunk per token, as the peer sends them

    client = ollama.Client(host=URL, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=Recorded())))
    if variant == "raw":
        def once():
            return "".join([c.message.content for c in client.chat(
                model=OLLAMA_MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True)])
    else:
        data = tempfile.mkdtemp(prefix="bench-instructions-")
        atexit.register(shutil.rmtree, data, ignore_errors=True)
        os.environ.update(OLLAMA_BASE_URL=URL, INFERENCE_HISTORY="off", INFERENCE_DATA_DIR=data)
        import inference_magics as im
        from inference_magics import settings
        from inference_magics.backends import get_backend

        get_backend("ollama", settings.load())._client = client  # the same client and transport as "raw"

        def once():
            return "".join(im.stream(PROMPT, backend="ollama", model=OLLAMA_MODEL))
    for _ in range(1 + runs):  # the first warms imports and first-call caches, in every child alike
        if once() != expected:
            raise SystemExit(f"{variant}: the streamed text is not the recorded reply")


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 20_000)
