"""The history and response-cache writes run behind the cell (inference_magics/write_behind.py):
nothing may be lost or read stale, and secrets are still redacted before anything reaches disk.
Real kernels through jupyter_client, against the loopback peers; nothing here is timed."""
import pytest

from inference_magics.history import HistoryStore
from tests.conftest import peer_environment
from tests.kernel_harness import Kernel

SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
# a long answer (~60k tokens) with a secret near its end: its redaction takes long enough that a read
# or an exit right after the completion would miss the row if nothing waited for it
LONG_ANSWER = " ".join(f"word{i}" for i in range(60_000)) + f" and the token is {SECRET} — done."
ASK = "import inference_magics as im\n_r = im.infer('tell me a long story')\n"


@pytest.fixture
def fresh_kernel(ollama_server, claude_server, tmp_path):
    """A kernel of its own (this test ends it), the extension loaded, its history opened by a first cell."""
    env = {**peer_environment(ollama_server.url, claude_server), "INFERENCE_DATA_DIR": str(tmp_path / "data")}
    ollama_server.reset()
    kernel = Kernel(env, cwd=str(tmp_path))
    kernel.history = tmp_path / "data" / "history.sqlite3"
    kernel.run("%load_ext inference_magics")
    kernel.run("%%infer\nfirst question")  # opens the history: later writes go to the background thread
    yield kernel
    try:
        kernel.shutdown()
    except Exception:
        pass  # already shut down by the test


def _last_row(path):
    store = HistoryStore(path)
    try:
        return store.count(), store.recent(1)[0]
    finally:
        store.close()


def test_a_history_read_right_after_a_completion_sees_the_answer_redacted(fresh_kernel, ollama_server):
    ollama_server.set(text=LONG_ANSWER)
    check = fresh_kernel.run(
        ASK + "rows = im.recall(limit=1)\n"  # in the same cell, at once
        "from inference_magics import write_behind\n"
        "print(write_behind._thread is not None, len(rows[0].output) > 100_000, rows[0].output.endswith('— done.'),\n"
        f"      {SECRET!r} in rows[0].output, {SECRET!r} in _r.text)")
    # the write went behind the cell, the read waited for it, and the row holds the whole answer, redacted
    assert check.stdout.split() == ["True", "True", "True", "False", "True"], check.everything


def test_a_kernel_shut_down_right_after_a_cell_keeps_its_history(fresh_kernel, ollama_server):
    ollama_server.set(text=LONG_ANSWER)
    fresh_kernel.run(ASK)
    fresh_kernel.client.stop_channels()
    fresh_kernel.manager.shutdown_kernel(now=False)  # a graceful shutdown, as Jupyter's does, at once
    count, row = _last_row(fresh_kernel.history)
    assert count == 2 and row.prompt.strip() == "tell me a long story" and row.output.endswith("— done.")
    raw = b"".join(p.read_bytes() for p in fresh_kernel.history.parent.glob("history.sqlite3*"))
    assert SECRET.encode() not in raw and b"[redacted" in raw


def test_an_interrupted_stream_is_recorded_with_its_partial_answer_and_unknown_counts(fresh_kernel, ollama_server):
    ollama_server.set(tokens=2000, token_delay=0.02)
    running = fresh_kernel.start("%%infer\ntell me a long story")

    def some_text_shown(execution):
        return any(m["content"]["data"]["text/plain"].startswith("word0 word1 word2")
                   for m in execution.of_type("update_display_data"))

    fresh_kernel.collect(running, until=some_text_shown, timeout=30)
    fresh_kernel.interrupt()
    fresh_kernel.collect(running, timeout=10)
    check = fresh_kernel.run(
        "%infer_history --limit 1 --out rows\n"
        "r = rows[0]\n"
        "print(r.interrupted, r.output == _infer.text, len(r.output) > 10, r.input_tokens, "
        "r.output_tokens == len(r.output.split()), r.cost_usd)")
    # Ollama reports its counts only in its last line, which never came: the input is unknown, the
    # output is what arrived (one piece per token), never 0 / 0
    assert check.stdout.split() == ["True", "True", "True", "None", "True", "None"], check.everything
    shown = fresh_kernel.run("%infer_history --limit 1").of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert "0 / 0" not in shown


def test_a_process_that_exits_right_after_a_completion_keeps_its_history(ollama_server, claude_server, tmp_path):
    """A script (or nbconvert's kernel) ending on its last completion: the exit waits for the write."""
    import os
    import subprocess
    import sys

    ollama_server.reset()
    ollama_server.set(text=LONG_ANSWER)
    env = {**os.environ, **peer_environment(ollama_server.url, claude_server), "INFERENCE_DATA_DIR": str(tmp_path / "data")}
    script = ("import inference_magics as im\n"
              "im.infer('first question')\n"  # opens the history; the next write goes behind
              "im.infer('tell me a long story')\n")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    count, row = _last_row(tmp_path / "data" / "history.sqlite3")
    assert count == 2 and row.prompt == "tell me a long story" and row.output.endswith("— done.")
    assert SECRET not in row.output
