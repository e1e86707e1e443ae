"""nbval runs each notebook in a real kernel: point those kernels at the loopback peers.

`pytest` (the README's test command) runs the notebooks with --nbval-lax: every cell must run
without error, and cells marked `# NBVAL_CHECK_OUTPUT` (structure only: a Result has text, JSON
parses, vectors have the model's dimension, one table row per model) must print what they saved.
With NOTEBOOKS_BACKEND=local the same notebooks run against the embedded local model instead,
with Ollama unreachable and no key (tests/test_notebooks.py does that in a subprocess).
"""
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.peers import AnthropicPeer, OllamaPeer  # noqa: E402

_peers: list = []
_PREFIX = "nbval-data-"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before the first notebook's kernel starts (nbval starts it when the first cell is set up)."""
    if os.environ.get("INFERENCE_DATA_DIR", "").startswith(_PREFIX):
        return  # already set up
    common = {"INFERENCE_DATA_DIR": tempfile.mkdtemp(prefix=_PREFIX), "MPLBACKEND": "Agg"}
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


def pytest_unconfigure(config):
    for peer in _peers:
        peer.stop()
