"""The embedded `local` backend for real: llama.cpp's llama-server, started by us, with the packaged
Gemma 3 270M GGUF. Skipped (with the reason) only when the `local` extra is not installed."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import inference_magics as im
from inference_magics import settings
from inference_magics.backends import get_backend
from inference_magics.backends.local import LocalBackend, default_threads
from tests.conftest import REPO, closed_port, computing, needs_local, wait_until

pytestmark = [needs_local, pytest.mark.usefixtures("local_model")]
LONG = "Write a long story about a forest."  # at temperature 0 this model writes to the token limit


def backend() -> LocalBackend:
    return get_backend("local", settings.load())


def server_of(b: LocalBackend):
    return next(iter(b._servers.values()))


def generating(server) -> bool:
    """Is llama-server still computing? (Its /slots endpoint is off: --no-slots.)"""
    return computing(server.pid)


@pytest.mark.warm_local_server
def test_a_real_model_answers_and_the_server_is_reused(monkeypatch):
    first = im.infer("What is the capital of France?", backend="local", max_tokens=16, temperature=0)
    assert "Paris" in first.text  # a real model, not canned text
    assert first.backend == "local" and first.model == "gemma-3-270m" and first.usage.output_tokens > 0
    assert first.metrics.ttft_s is not None and first.metrics.tokens_per_s
    server = server_of(backend())
    pid, url = server.pid, server.url
    second = im.infer("What is the capital of Italy?", backend="local", max_tokens=16, temperature=0)
    assert second.text.strip() and (server.pid, server.url) == (pid, url)  # one server across cells
    assert url.startswith("http://127.0.0.1:")


@pytest.mark.warm_local_server
def test_streaming_arrives_in_pieces():
    pieces = list(im.stream(LONG, backend="local", max_tokens=40, temperature=0))
    assert len(pieces) > 5


@pytest.mark.warm_local_server
def test_interrupt_stops_generation_on_the_server():
    running = im.stream(LONG, backend="local", max_tokens=2000, temperature=0)
    seen = []

    def on_text(text):
        seen.append(text)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(im.InferenceInterrupted) as err:
        running.each(on_text)
    assert err.value.result.interrupted and err.value.result.text == "".join(seen)
    server = server_of(backend())
    # the server stopped generating: at once in practice; the bound is generous so load cannot flake it
    assert wait_until(lambda: not generating(server), timeout=30)


def test_a_killed_server_is_restarted_once_with_a_notice():
    im.infer("Hello", backend="local", max_tokens=4)
    server = server_of(backend())
    old_pid = server.pid
    os.kill(old_pid, signal.SIGKILL)
    assert wait_until(lambda: not server.running)
    result = im.infer("What is the capital of France?", backend="local", max_tokens=8, temperature=0)
    assert result.text.strip() and server.pid != old_pid
    assert any("had stopped (exit code -9); restarted it" in n for n in result.notices)


def test_a_server_killed_mid_answer_keeps_the_partial_text_and_recovers():
    im.infer("Hello", backend="local", max_tokens=4)
    server = server_of(backend())
    seen = []

    def on_text(text):
        seen.append(text)
        if len(seen) == 3:
            os.kill(server.pid, signal.SIGKILL)

    with pytest.raises(im.BackendError, match="stopped .* partial answer is kept") as err:
        im.stream(LONG, backend="local", max_tokens=500, temperature=0).each(on_text)
    assert err.value.result.text.startswith("".join(seen))
    # the property: the next request is served (a finished answer, no error) — not how well the model talks
    after = im.infer("What is the capital of France?", backend="local", max_tokens=8, temperature=0)
    assert after.error is None and after.stop_reason in ("stop", "length")


def test_two_processes_of_one_user_share_one_server_and_it_goes_after_them():
    """Property: two Python processes with the same data folder use one llama-server (same pid and
    port); once both have exited, it stops within the idle timeout (5 s here; bounded at 60 s)."""
    code = ("import inference_magics as im, json; from inference_magics.backends import get_backend; "
            "from inference_magics import settings; r = im.infer('Hello', backend='local', max_tokens=4); "
            "s = next(iter(get_backend('local', settings.load())._servers.values())); print(s.url, s.pid, flush=True)")
    env = {k: v for k, v in os.environ.items() if k != "INFERENCE_LOCAL_SERVER"}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
             for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    (url1, pid1), (url2, pid2) = outputs
    assert (url1, pid1) == (url2, pid2)
    assert wait_until(lambda: not _alive(int(pid1)), timeout=60)


def test_the_server_dies_with_a_killed_kernel():
    """Property: SIGKILL of the only user (no atexit runs) still stops the server within the idle timeout."""
    code = ("import inference_magics as im; from inference_magics.backends import get_backend; "
            "from inference_magics import settings; im.infer('Hello', backend='local', max_tokens=2); "
            "s = next(iter(get_backend('local', settings.load())._servers.values())); print(s.pid, flush=True); "
            "import time; time.sleep(60)")
    env = {k: v for k, v in os.environ.items() if k != "INFERENCE_LOCAL_SERVER"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    server_pid = int(proc.stdout.readline())
    proc.kill()  # SIGKILL: no atexit handlers run
    proc.wait()
    assert wait_until(lambda: not _alive(server_pid), timeout=60)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_health_reports_loading_then_ready():
    b = backend()
    assert b.health().ok and "starts on first use" in b.health().detail
    threads = settings.load().local_threads or default_threads()  # the health line says how many cores
    assert f"on {threads} thread{'s' * (threads != 1)} (INFERENCE_LOCAL_THREADS)" in b.health().detail
    starting = threading.Thread(target=lambda: b._server(""))
    starting.start()
    seen = []
    while starting.is_alive():
        seen.append(b.health().detail)
        time.sleep(0.05)
    starting.join()
    assert any("still loading" in d for d in seen), seen
    final = b.health()
    assert final.ok and "serving gemma-3-270m" in final.detail and f"{threads} thread" in final.detail


@pytest.mark.warm_local_server
def test_models_and_embeddings_from_the_chat_model():
    """Property: the chat model is listed with its size and quantization, and a chat GGUF can still
    serve embeddings when asked for by name (mean-pooled hidden states, 640 dimensions for Gemma)."""
    b = backend()
    models = b.list_models()
    assert models[0].name == "gemma-3-270m" and models[0].size > 100_000_000 and models[0].quantization == "Q4_K_M"
    vectors = b.embed(["the cat sat on the mat", "stock markets fell sharply"], "gemma-3-270m")
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) == 640 and vectors[0] != vectors[1]


@pytest.mark.warm_local_server
def test_when_ollama_is_down_and_there_is_no_key_the_default_route_falls_to_local(monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    result = im.infer("What is the capital of France?", max_tokens=8)
    assert result.backend == "local"
    assert "Ollama is unreachable, so the embedded local model" in result.route.reason
    private = im.infer("Confidential: what is the capital of France?", max_tokens=8)
    assert private.backend == "local"


def test_a_missing_model_is_named_with_what_exists(monkeypatch):
    monkeypatch.setenv("INFERENCE_LOCAL_MODEL", "/nowhere/model.gguf")
    with pytest.raises(im.ConfigError, match="no GGUF file or Ollama-pulled model named '/nowhere/model.gguf'"):
        im.infer("hi", backend="local")


def test_not_installed_is_one_line_with_the_fix(monkeypatch):
    monkeypatch.setenv("INFERENCE_LOCAL_SERVER", "/nonexistent/llama-server")
    with pytest.raises(im.ConfigError, match="INFERENCE_LOCAL_SERVER='/nonexistent/llama-server' is not an executable"):
        im.infer("hi", backend="local")


def test_ollama_pulled_models_are_offered(monkeypatch, tmp_path):
    """Ollama stores pulled models as GGUF blobs named by digest; we find them by name."""
    import json

    from inference_magics.backends.local import resolve_model

    root = tmp_path / "ollama-models"
    gguf = resolve_model(None)[1]
    digest = "sha256-" + "ab" * 32
    (root / "blobs").mkdir(parents=True)
    (root / "blobs" / digest).symlink_to(gguf)
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / "tinygemma" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest.replace("-", ":")}]}))
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    assert resolve_model("tinygemma")[1] == root / "blobs" / digest
    assert "tinygemma:latest" in [m.name for m in backend().list_models()]
    monkeypatch.setenv("INFERENCE_LOCAL_MODEL", "tinygemma")
    # the property: a server runs the pulled model and finishes an answer — not the model's eloquence
    served = im.infer("What is the capital of France?", backend="local", max_tokens=6, temperature=0)
    assert served.error is None and served.stop_reason in ("stop", "length")


@pytest.mark.warm_local_server
def test_json_from_the_base_model_parses():
    prompts = ["Give the name and year of the first programmable computer as JSON.", "List three colours as JSON."]
    for prompt in prompts:
        result = im.infer(prompt, backend="local", format="json", max_tokens=200)
        assert isinstance(result.parsed, dict), result.text


def test_a_server_started_from_a_worker_thread_dies_with_a_killed_kernel():
    """The chat widget and experiments start the server from their own threads."""
    code = ("import threading, time, inference_magics as im; from inference_magics.backends import get_backend; "
            "from inference_magics import settings; "
            "t = threading.Thread(target=lambda: im.infer('Hello', backend='local', max_tokens=2)); t.start(); t.join(); "
            "s = next(iter(get_backend('local', settings.load())._servers.values())); print(s.pid, flush=True); "
            "time.sleep(60)")
    env = {k: v for k, v in os.environ.items() if k != "INFERENCE_LOCAL_SERVER"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    server_pid = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    assert wait_until(lambda: not _alive(server_pid), timeout=60)
