"""nbval runs each notebook in a real kernel: point those kernels at the loopback peers.

`pytest` (the README's test command) runs the notebooks with --nbval-lax: every cell must run
without error, and cells tagged `nbval-check-output` (structure only: a Result has text, JSON
parses, vectors have the model's dimension, one table row per model) must print what they saved. Tags,
not `# NBVAL_…` comments, so a reader sees none; the one `# NBVAL_RAISES_EXCEPTION` left (07) stays
because its cell's source is part of a recorded `--fix` request.
With NOTEBOOKS_BACKEND=local the same notebooks run against the embedded local model instead,
with Ollama unreachable and no key (tests/test_notebooks.py does that in a subprocess).

With NOTEBOOKS_BACKEND=replay they replay the committed cache/responses.sqlite3 (recorded by
`scripts/notebooks --record` on the embedded model) with INFERENCE_CACHE=replay: no model runs —
llama-server is a tripwire that leaves a file if anything starts it, and the session fails then.
A request that was never recorded fails its cell with a CacheMiss line; a notebook not listed in
cache/recorded.txt (added or changed since the recording) is skipped, saying how to record it. (nbval cannot compare a
streamed answer — it ignores update_display_data — so tests/test_notebooks.py checks the replayed
answers word for word with nbclient.)
"""
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.notebook_replay import recorded, replay_environment  # noqa: E402
from tests.peers import AnthropicPeer, OllamaPeer  # noqa: E402

_peers: list = []
_PREFIX = "nbval-data-"


def _tripwire_note() -> Path:
    """Where the replay run's fake llama-server writes if anything starts it (NOTEBOOKS_TRIPWIRE_NOTE
    lets a test look)."""
    return Path(os.environ.get("NOTEBOOKS_TRIPWIRE_NOTE") or Path(tempfile.gettempdir()) / "nbval-llama-server-started")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before the first notebook's kernel starts (nbval starts it when the first cell is set up)."""
    if Path(os.environ.get("INFERENCE_DATA_DIR", "")).name.startswith(_PREFIX):
        return  # already set up (once per session: one data folder, so one embedded server and one pair of peers)
    common = {"INFERENCE_DATA_DIR": tempfile.mkdtemp(prefix=_PREFIX), "MPLBACKEND": "Agg"}
    if os.environ.get("NOTEBOOKS_BACKEND") == "replay":
        for name in [n for n in os.environ if n.startswith(("OLLAMA_", "ANTHROPIC_", "OPENAI_"))]:
            del os.environ[name]
        _tripwire_note().unlink(missing_ok=True)
        os.environ.update(replay_environment(Path(common["INFERENCE_DATA_DIR"]), _tripwire_note()))
        return
    if os.environ.get("NOTEBOOKS_BACKEND") == "local":
        os.environ.pop("ANTHROPIC_API_KEY", None)
        os.environ.pop("INFERENCE_LOCAL_SERVER", None)
        os.environ.update({**common, "INFERENCE_DEFAULT_BACKEND": "local", "OLLAMA_BASE_URL": "http://127.0.0.1:9"})
        return
    # tool_calls="auto": asked for tools, the peers call the first one (notebook 08)
    ollama = OllamaPeer(token_delay=0.005, tool_calls="auto").start()
    claude = AnthropicPeer(token_delay=0.005, tool_calls="auto").start()
    _peers.extend([ollama, claude])
    os.environ.update({
        **common, "OLLAMA_BASE_URL": ollama.url, "ANTHROPIC_BASE_URL": claude.url, "ANTHROPIC_API_KEY": claude.api_key,
        "INFERENCE_DEFAULT_BACKEND": "ollama", "INFERENCE_LOCAL_SERVER": "/nonexistent/llama-server",
    })


def pytest_collection_modifyitems(config, items):
    """Replay runs the notebooks the cache was recorded for (cache/recorded.txt); the others are
    skipped, saying how to record them."""
    if os.environ.get("NOTEBOOKS_BACKEND") != "replay":
        return
    names = recorded()
    for item in items:
        name = Path(str(item.fspath)).name
        if name.endswith(".ipynb") and name not in names:
            item.add_marker(pytest.mark.skip(reason=f"{name} is not in cache/recorded.txt: run scripts/notebooks --record"))


def pytest_sessionfinish(session, exitstatus):
    """Replay must not have started a model: the run fails if the tripwire was touched."""
    if os.environ.get("NOTEBOOKS_BACKEND") == "replay" and _tripwire_note().exists():
        print(f"\nreplay started llama-server (see {_tripwire_note()}): a request was not answered from the cache")
        session.exitstatus = 1


def pytest_unconfigure(config):
    for peer in _peers:
        peer.stop()
