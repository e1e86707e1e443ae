"""The history as users meet it: every completion through the API lands there, redacted."""
import pytest

import inference_magics as im
from inference_magics import cache, embeddings, history


@pytest.fixture
def ollama(monkeypatch, ollama_peer, tmp_path):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    history._stores.clear()
    cache._caches.clear()
    yield ollama_peer
    history._stores.clear()
    cache._caches.clear()


def test_a_completion_is_recorded_with_its_route_and_numbers(ollama):
    ollama.set(tokens=6)
    result = im.infer("What is the capital of France?", system="Be brief.", temperature=0.2)
    (entry,) = im.recall()
    assert (entry.prompt, entry.system, entry.output) == ("What is the capital of France?", "Be brief.", result.text)
    assert (entry.backend, entry.model, entry.stop_reason) == ("ollama", "llama3.2:latest", "stop")
    assert entry.reason == result.route.reason and entry.options["temperature"] == 0.2
    assert entry.output_tokens == 6 and entry.ttft_s is not None and not entry.interrupted and entry.error is None


def test_secrets_never_reach_the_database(ollama, tmp_path):
    im.infer("Why does login fail? password = 'sup3r-s3cret-pw' and token ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    (entry,) = im.recall()
    assert "sup3r-s3cret-pw" not in entry.prompt and "[redacted: a password]" in entry.prompt
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("history.sqlite3*"))
    assert b"sup3r-s3cret-pw" not in raw and b"ghp_abcdefghij" not in raw and b"Why does login fail" in raw


def test_failed_and_interrupted_completions_are_recorded_too(ollama):
    ollama.set(tokens=10, fault="error_mid_stream", fault_after=2)
    with pytest.raises(im.BackendError):
        im.infer("first")
    ollama.set(fault=None, tokens=100, token_delay=0.01)
    seen = []

    def stop_after_three(text):
        seen.append(text)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(im.InferenceInterrupted):
        im.stream("second").each(stop_after_three)
    interrupted, failed = im.recall()
    assert interrupted.interrupted and interrupted.output == "".join(seen)
    assert "failed mid-answer" in failed.error and failed.output == "word0 word1"


def test_search_and_semantic_recall(ollama):
    for prompt in ("the cat sat on the mat", "stock markets fell sharply today", "a recipe for chocolate cake"):
        ollama.set(text=f"notes about {prompt}")
        im.infer(prompt)
    assert [e.prompt for e in im.recall(search="STOCK")] == ["stock markets fell sharply today"]
    ranked = im.recall(semantic="where did the cat sit", limit=2)
    assert ranked[0][1].prompt == "the cat sat on the mat" and ranked[0][0] > ranked[1][0]
    embeds_before = len([r for r in ollama.requests if r.path == "/api/embed"])
    im.recall(semantic="where did the cat sit")  # the entries' vectors come from the cache now
    assert len([r for r in ollama.requests if r.path == "/api/embed"]) == embeds_before


def test_history_off_writes_nothing(monkeypatch, ollama, tmp_path):
    monkeypatch.setenv("INFERENCE_HISTORY", "off")
    im.infer("hello")
    assert not list((tmp_path / "data").glob("history.sqlite3*"))
    with pytest.raises(im.InferenceError, match="history is off"):
        im.recall()


def test_a_corrupt_history_never_breaks_a_completion(ollama, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"garbage" * 200)
    first = im.infer("hello")
    assert first.text and any("history is not being saved" in n for n in first.notices)
    assert not any("history" in n for n in im.infer("hello again").notices)  # reported once


def test_an_unusable_data_folder_never_breaks_a_completion_or_an_embedding(monkeypatch, ollama, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(blocker / "data"))
    result = im.infer("hello")
    assert result.text and any("history is not being saved" in n for n in result.notices)
    done = embeddings.run(["hello"])
    assert done.vectors.shape[0] == 1 and any("the cache is off" in n for n in done.notices)
