"""%models and health through the API: every backend in one list, a down backend is a row."""
import pytest

import inference_magics as im
from tests.conftest import closed_port


def test_every_backend_in_one_list_with_defaults_and_aliases(peers):
    listing = im.models()
    by_name = {(m.backend, m.name): m for m in listing}
    assert listing.unavailable == {}
    llama = by_name[("ollama", "llama3.2:latest")]
    assert (llama.kind, llama.parameter_size, llama.quantization, llama.family) == ("chat", "3.2B", "Q4_K_M", "llama")
    assert llama.size == 2019393189 and llama.modified_at.startswith("2025-10-20") and llama.default_for == "default"
    assert by_name[("ollama", "nomic-embed-text:latest")].kind == "embed"
    assert by_name[("ollama", "nomic-embed-text:latest")].default_for == "embeddings"
    assert by_name[("ollama", "qwen2.5-coder:7b")].default_for == "code"
    assert by_name[("ollama", "llama3.2:3b")].default_for == "chat"
    sonnet = by_name[("anthropic", "claude-sonnet-4-6")]  # from the API's model list, not a fixed table
    assert "sonnet" in sonnet.aliases and "claude-sonnet-4.6" in sonnet.aliases and sonnet.default_for == "default"
    old = by_name[("anthropic", "claude-sonnet-4-5-20250929")]
    assert old.aliases == ("claude-sonnet-4-5", "claude-sonnet-4.5")


def test_a_down_backend_is_reported_not_fatal(monkeypatch, peers):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    listing = im.models()
    assert "cannot connect to Ollama" in listing.unavailable["ollama"]
    assert any(m.backend == "anthropic" for m in listing)


def test_every_backend_down(monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    listing = im.models()
    assert list(listing) == [] and set(listing.unavailable) == {"ollama", "anthropic"}
    assert "ANTHROPIC_API_KEY" in listing.unavailable["anthropic"]


def test_one_backend_and_an_unknown_one(peers):
    assert {m.backend for m in im.models("ollama")} == {"ollama"}
    with pytest.raises(im.ConfigError, match="unknown backend 'nope'"):
        im.models("nope")


def test_an_openai_server_is_listed_once_configured(monkeypatch, peers, openai_peer):
    assert "openai" not in {m.backend for m in im.models()} | set(im.models().unavailable)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    openai_models = [m for m in im.models() if m.backend == "openai"]
    assert [m.name for m in openai_models][:1] == ["gemma-3-270m"] and openai_models[0].default_for == "default"


def test_health_reports_each_backend_with_what_to_do(monkeypatch, peers):
    status = im.health()
    assert status["ollama"].ok and "Ollama 0.12.6" in status["ollama"].detail
    assert status["anthropic"].ok and "local" not in status and "openai" not in status  # neither is set up here
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    status = im.health()
    assert not status["ollama"].ok and "ollama serve" in status["ollama"].detail
    assert not status["anthropic"].ok and "ANTHROPIC_API_KEY" in status["anthropic"].detail
