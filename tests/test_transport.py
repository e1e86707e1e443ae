"""A server on this machine is reached directly: a recording proxy set in every proxy variable
(and no NO_PROXY) sees nothing of Ollama, an OpenAI-compatible server, embeddings, health checks,
model listings or the embedded llama-server — while Claude's SDK still goes through it. A "local"
server answering a redirect gets one error line, and the Location host sees nothing."""
import stat

import pytest

import inference_magics as im
from tests.conftest import needs_local
from tests.peers import OllamaPeer, OpenAIPeer
from tests.peers.recording import Redirector

SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"  # a GitHub token shape
PRIVATE = f"Why does git reject this token? {SECRET}"


def sent_anywhere(recorder) -> str:
    return " ".join(f"{r.target} {r.body!r}" for r in recorder.requests)


def test_loopback_ollama_is_reached_directly_under_a_proxy(proxy, peers):
    ollama, claude = peers
    route = im.route(PRIVATE)
    assert route.backend == "ollama" and "stays on this machine" in route.reason  # what --explain shows
    assert im.infer(PRIVATE).text == ollama.expected_text()
    assert SECRET in str(ollama.requests_to("/api/chat")[-1].body)  # it went to Ollama itself
    assert im.embed(["hello", PRIVATE]).shape == (2, 768)
    assert ollama.requests_to("/api/embed")
    assert im.health()["ollama"].ok
    assert any(m.backend == "ollama" for m in im.models())
    assert ollama.requests_to("/api/tags") and ollama.requests_to("/api/version")
    assert not [r for r in proxy.requests if str(ollama.port) in r.target], sent_anywhere(proxy)
    assert SECRET not in sent_anywhere(proxy)


def test_claude_keeps_honouring_the_proxy_and_never_gets_the_secret(proxy, peers):
    _, claude = peers
    assert im.infer("What is the capital of France?", model="claude-haiku-4.5").text == claude.expected_text()
    through_proxy = [r for r in proxy.requests if r.target.startswith(claude.url)]
    assert through_proxy and through_proxy[-1].target.endswith("/v1/messages")  # corporate users need this
    with pytest.raises(im.PrivacyError) as refused:
        im.infer(PRIVATE, model="claude-haiku-4.5")
    assert refused.value.message.startswith("refused to send this prompt to anthropic")
    assert SECRET not in refused.value.message
    assert SECRET not in sent_anywhere(proxy)
    assert SECRET not in " ".join(str(r.body) for r in claude.requests)


def test_loopback_openai_compatible_server_is_reached_directly(proxy, monkeypatch, peers, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    assert im.infer(PRIVATE, backend="openai").text == openai_peer.expected_text()
    assert SECRET in str(openai_peer.requests_to("/v1/chat/completions")[-1].body)
    assert im.embed([PRIVATE], backend="openai", model="nomic-embed-text-v1.5").shape[0] == 1
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "openai")
    assert im.health()["openai"].ok and any(m.backend == "openai" for m in im.models())
    assert not [r for r in proxy.requests if str(openai_peer.port) in r.target], sent_anywhere(proxy)


def test_llama_server_readiness_polls_go_straight_to_the_server(proxy, ollama_peer):
    """The embedded server's /health polls (what `LlamaServer` waits on) with every proxy variable
    set: they reach the loopback server itself, so it can look ready."""
    from inference_magics.backends.llama_server import _health

    status = _health(ollama_peer.url, timeout=2)
    assert status == 404 and ollama_peer.requests_to("/health")  # answered by the server, not a proxy
    assert not proxy.requests


@needs_local
def test_the_embedded_llama_server_starts_and_answers_under_a_proxy(proxy, local_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = im.infer(f"Question: what is 2 + 2? {SECRET}\nAnswer:", backend="local", max_tokens=8)
    assert result.backend == "local" and result.stop_reason
    assert im.health()["local"].ok
    assert not proxy.requests, sent_anywhere(proxy)  # the readiness polls and the prompt went direct
    logs = list((tmp_path / "cache" / "inference_magics" / "logs").glob("llama-server-*.log"))
    assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
    assert stat.S_IMODE(logs[0].parent.stat().st_mode) == 0o700
    assert all(SECRET not in p.read_text(errors="replace") for p in logs)


# --- redirects ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def elsewhere():
    """Where a hostile redirect points: a working Ollama and OpenAI-compatible server that record."""
    with OllamaPeer() as ollama, OpenAIPeer() as openai:
        yield ollama, openai


@pytest.fixture
def redirecting_ollama(monkeypatch, elsewhere):
    target, _ = elsewhere
    target.reset()
    with Redirector(target.url) as redirector:
        monkeypatch.setenv("OLLAMA_BASE_URL", redirector.url)
        yield redirector, target


def one_line(error) -> str:
    message = error.value.message
    assert "\n" not in message and SECRET not in message
    return message


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirecting_ollama_is_one_line_and_nothing_follows(redirecting_ollama, status):
    redirector, target = redirecting_ollama
    redirector.status = status
    with pytest.raises(im.BackendError) as error:
        im.infer(PRIVATE)
    message = one_line(error)
    # a private prompt first asks /api/show whether the server forwards the model (policy.check): that
    # first request is the one redirected, and refused; the prompt itself is never sent
    assert f"Ollama at {redirector.url} answered a redirect (HTTP {status}) to {target.url}/api/show" in message
    assert "refusing to follow it" in message and "OLLAMA_BASE_URL" in message
    assert not target.requests  # the Location host saw nothing at all
    assert [r.target for r in redirector.requests] == ["/api/show"]


def test_a_redirecting_ollama_refuses_embeddings_listing_and_health(redirecting_ollama):
    redirector, target = redirecting_ollama
    with pytest.raises(im.BackendError) as error:
        im.embed(PRIVATE)
    assert "answered a redirect" in one_line(error)
    listing = im.models("ollama")
    assert "answered a redirect" in listing.unavailable["ollama"]
    health = im.health()["ollama"]
    assert not health.ok and "answered a redirect" in health.detail and "\n" not in health.detail
    assert not target.requests


def test_a_redirecting_openai_compatible_server_is_one_line(monkeypatch, peers, elsewhere):
    _, target = elsewhere
    target.reset()
    with Redirector(target.base_url) as redirector:
        monkeypatch.setenv("OPENAI_BASE_URL", redirector.url + "/v1")
        monkeypatch.setenv("OPENAI_DEFAULT_MODEL", "gemma-3-270m")
        with pytest.raises(im.BackendError) as error:
            im.infer(PRIVATE, backend="openai")
        assert "answered a redirect (HTTP 307)" in one_line(error) and "OPENAI_BASE_URL" in error.value.message
        with pytest.raises(im.BackendError):
            im.embed(PRIVATE, backend="openai", model="nomic-embed-text-v1.5")
    assert not target.requests


def test_a_hostile_location_is_shown_without_credentials_or_query(monkeypatch, peers, elsewhere):
    target, _ = elsewhere
    with Redirector("http://user:hunter2pass@127.0.0.1:9/x?key=abc\r\nInjected: yes") as redirector:
        monkeypatch.setenv("OLLAMA_BASE_URL", redirector.url)
        with pytest.raises(im.BackendError) as error:
            im.infer("hello")
    message = one_line(error)
    assert "hunter2pass" not in message and "key=abc" not in message and "Injected" not in message


def test_proxy_variables_still_apply_to_a_remote_ollama(monkeypatch, proxy):
    """Off this machine we keep the user's proxy (and a private prompt never goes there)."""
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://ollama.invalid:11434")
    monkeypatch.setenv("OLLAMA_TIMEOUT", "3000")
    with pytest.raises(im.InferenceError):
        im.infer("What is the capital of France?", backend="ollama")
    assert [r.target for r in proxy.requests] == ["http://ollama.invalid:11434/api/chat"]
    proxy.reset()
    with pytest.raises(im.PrivacyError):
        im.infer(PRIVATE, backend="ollama")
    assert not proxy.requests



def test_a_token_count_on_a_loopback_server_never_goes_through_the_proxy(proxy, monkeypatch):
    from inference_magics import budget

    with OpenAIPeer() as server:  # its own port: no earlier test has taught the kernel it is not llama-server
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        budget.estimate("openai", "peer-model", [PRIVATE], count=True)  # --explain's count (a 404: not llama-server)
        assert [r.path for r in server.requests] == ["/apply-template"]  # asked directly
    assert SECRET not in sent_anywhere(proxy) and not proxy.requests
