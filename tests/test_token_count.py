"""Estimates from real tokenizers where a server can answer (llama-server's /apply-template and
/tokenize), the stated approximation elsewhere: Ollama documents no tokenizer endpoint, a server
that is not llama-server answers 404, and the embedded model is never started for an estimate."""

import inference_magics as im
from inference_magics import budget, settings
from inference_magics.backends import get_backend
from inference_magics.pricing import approximate_tokens
from tests.conftest import needs_local

PROMPT = "Explain, in two sentences, why the sky is blue."


def test_ollama_gets_the_stated_approximation_and_no_request(peers):
    ollama, _ = peers
    found = budget.estimate("ollama", "llama3.2", [PROMPT], count=True)
    assert found.method == budget.APPROXIMATE and found.input_tokens == approximate_tokens("\n" + PROMPT)
    assert not ollama.requests  # Ollama has no documented way to count without generating


def test_a_server_that_is_not_llama_server_is_asked_once_then_approximated(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    for _ in range(2):
        found = budget.estimate("openai", "peer-model", [PROMPT], count=True)
        assert found.method == budget.APPROXIMATE
    assert [r.path for r in openai_peer.requests] == ["/apply-template"]  # its 404 is remembered


def test_a_private_prompt_is_not_sent_to_a_remote_server_to_be_counted(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url.replace("127.0.0.1", "localhost.localdomain"))
    found = budget.estimate("openai", "peer-model", ["my password is hunter2hunter2"], count=True)
    assert found.method == budget.APPROXIMATE and not openai_peer.requests


@needs_local
def test_an_openai_compatible_llama_server_counts_what_it_will_be_sent(monkeypatch, llama_server):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", llama_server.api_key.get())  # /apply-template and /tokenize ask for it
    found = budget.estimate("openai", "gemma-3-270m", [PROMPT], system="Answer briefly.", count=True)
    assert found.method == budget.counted_by("openai")
    answer = im.infer(PROMPT, backend="openai", system="Answer briefly.", max_tokens=4, temperature=0)
    assert found.input_tokens == answer.usage.input_tokens  # the server's own prompt count


@needs_local
def test_the_embedded_model_counts_once_it_runs_and_is_never_started_for_an_estimate(monkeypatch, local_model,
                                                                                   tmp_path):
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(tmp_path))
    before = budget.estimate("local", "gemma-3-270m", [PROMPT], count=True)
    assert before.method == budget.APPROXIMATE
    backend = get_backend("local", settings.load())
    assert all(not s.running for s in backend._servers.values()) and backend._handle("", False).live_url() is None
    answer = im.infer(PROMPT, backend="local", max_tokens=4, temperature=0)
    after = budget.estimate("local", "gemma-3-270m", [PROMPT], count=True)
    assert after.method == budget.counted_by("local")
    assert after.input_tokens == answer.usage.input_tokens
    monkeypatch.setenv("INFERENCE_CACHE", "replay")  # replay asks no server, not even its tokenizer
    assert budget.estimate("local", "gemma-3-270m", [PROMPT], count=True).method == budget.APPROXIMATE
