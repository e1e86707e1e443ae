"""Review, summarize and experiment through the API, against the peers."""
import threading

import pytest

import inference_magics as im
from inference_magics import experiments, workflows
from tests.conftest import wait_until

CODE = "def average(xs):\n    return sum(xs) / len(xs)\n"


def chats(peer):
    return [r for r in peer.requests if r.path == "/api/chat"]


def test_review_is_structured_numbered_and_local_by_default(monkeypatch, peers):
    ollama, claude = peers
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "anthropic")  # even then, code stays here
    result = workflows.review(CODE)
    assert result.backend == "ollama" and result.model == "qwen2.5-coder:7b"
    assert "code review stays on this machine" in result.route.reason
    body = chats(ollama)[-1].body
    system, prompt = body["messages"][0]["content"], body["messages"][1]["content"]
    for section in ("## Summary", "## Bugs", "## Security", "## Style", "## Suggested patch"):
        assert section in system
    assert "1 | def average(xs):" in prompt and "2 |     return sum(xs) / len(xs)" in prompt
    assert not claude.requests


def test_review_goes_to_claude_only_when_asked_and_never_with_a_secret(peers):
    ollama, claude = peers
    assert workflows.review(CODE, model="claude-haiku-4.5").backend == "anthropic"
    with pytest.raises(im.PrivacyError):
        workflows.review(CODE + 'API_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"\n', model="claude-haiku-4.5")
    assert len([r for r in claude.requests if r.path == "/v1/messages"]) == 1


def test_review_without_code():
    with pytest.raises(im.ConfigError, match="no code to review"):
        workflows.review("  \n")


def test_a_short_text_is_summarized_in_one_request(peers):
    ollama, _ = peers
    result = workflows.summarize("A short note about cats.", length="short", shape="paragraph")
    assert result.text and len(chats(ollama)) == 1
    prompt = chats(ollama)[-1].body["messages"][-1]["content"]
    assert "in two or three sentences" in prompt and "as flowing prose" in prompt and "A short note about cats." in prompt


def test_a_long_text_is_summarized_map_reduce(peers):
    ollama, _ = peers
    paragraphs = [f"Paragraph {i} talks about topic {i}. " * 40 for i in range(40)]
    text = "\n\n".join(paragraphs)  # ~60,000 characters: more than Ollama's default context
    running = workflows.summarize_stream(text, progress=False)
    result = running.each(lambda piece: None)
    maps = chats(ollama)[:-1]
    assert running.chunks == len(maps) > 1
    assert all(len(r.body["messages"][-1]["content"]) < 12_000 for r in maps)  # each chunk fits
    final = chats(ollama)[-1].body["messages"][-1]["content"]
    assert f"{running.chunks} partial summaries" in final and "Part 1:" in final and result.text


def test_bad_summary_options():
    with pytest.raises(im.ConfigError, match="--length must be one of"):
        workflows.summarize("text", length="huge")
    with pytest.raises(im.ConfigError, match="no text to summarize"):
        workflows.summarize("")


def test_experiment_runs_every_model_at_once(peers):
    ollama, claude = peers
    ollama.set(tokens=20, token_delay=0.1)
    claude.set(tokens=20, token_delay=0.1)
    done = experiments.experiment("Explain recursion.", ["llama3.2", "qwen2.5-coder:7b", "claude-haiku-4.5"])
    assert [r.model for r in done.runs] == ["llama3.2", "qwen2.5-coder:7b", "claude-haiku-4.5"]
    assert [r.backend for r in done.runs] == ["ollama", "ollama", "anthropic"]
    assert all(r.text == ollama.expected_text() and r.error is None for r in done.runs)
    arrivals = sorted(r.time for r in ollama.requests + claude.requests if r.path in ("/api/chat", "/v1/messages"))
    assert arrivals[-1] - arrivals[0] < 1.0  # all started together, inside the first 2-second answer
    rows = done.rows()
    assert len(rows) == 3 and rows[2]["cost_usd"] is not None and rows[0]["tokens_per_s"] > 0
    frame = done.frame()
    assert list(frame["model"]) == ["llama3.2", "qwen2.5-coder:7b", "claude-haiku-4.5"] and "text" in frame


def test_experiment_repeat_and_privacy_per_model(peers):
    ollama, claude = peers
    done = experiments.experiment("Confidential: our Q3 numbers", ["llama3.2", "claude-haiku-4.5"], repeat=2)
    assert len(done.runs) == 4
    refused = [r for r in done.runs if r.model == "claude-haiku-4.5"]
    assert all("refused to send this prompt to anthropic" in r.error for r in refused)
    assert all(r.text == ollama.expected_text() for r in done.runs if r.model == "llama3.2")
    assert not [r for r in claude.requests if r.path == "/v1/messages"]


def test_stopping_an_experiment_closes_every_stream(peers):
    ollama, _ = peers
    ollama.set(tokens=500, token_delay=0.02)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    done = experiments.experiment("go", ["llama3.2", "qwen2.5-coder:7b", "llama3.2:3b"], stop=stop)
    assert all(r.result.interrupted and r.text for r in done.runs)
    assert wait_until(lambda: ollama.disconnects == 3) and ollama.completed == 0


def test_bad_experiment_options():
    with pytest.raises(im.ConfigError, match="--models is empty"):
        experiments.parse_models(" , ")
    with pytest.raises(im.ConfigError, match="--repeat must be 1 or more"):
        experiments.experiment("hi", ["a"], repeat=0)


def test_a_private_document_is_summarized_locally_chunk_by_chunk(monkeypatch, peers):
    ollama, claude = peers
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "anthropic")
    secret_at_the_end = "\n\n".join(f"Paragraph {i} is ordinary text. " * 40 for i in range(30))
    secret_at_the_end += "\n\nThe admin password is hunter2hunter2."
    result = workflows.summarize(secret_at_the_end, progress=False)
    assert result.backend == "ollama" and len(chats(ollama)) > 2  # map and reduce, all on this machine
    assert not [r for r in claude.requests if r.path == "/v1/messages"]
