"""The response cache (INFERENCE_CACHE=off|on|replay), counted at the peers: a repeated request
with the cache on sends nothing; replay sends nothing at all, and a miss is one line."""
import json
import sqlite3

import pytest

import inference_magics as im
from inference_magics import cache, history, response_cache, settings, write_behind
from inference_magics.notebook.render import footer


@pytest.fixture
def cached(peers, monkeypatch):
    cache._caches.clear()
    history._stores.clear()
    yield peers
    cache._caches.clear()
    history._stores.clear()


def messages_sent(peer):
    return [r for r in peer.requests if r.path in ("/v1/messages", "/api/chat")]


def test_on_answers_a_repeated_request_from_the_cache_and_sends_nothing(cached, monkeypatch):
    _, claude = cached
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    first = im.infer("Name three rivers.", model="claude-haiku-4.5", temperature=0.2)
    assert len(messages_sent(claude)) == 1 and not first.cached and first.cost_usd > 0
    again = im.infer("Name three rivers.", model="claude-haiku-4.5", temperature=0.2)
    assert len(messages_sent(claude)) == 1  # answered from the file
    assert again.cached and again.text == first.text and again.cost_usd == 0.0
    assert again.cached_at[:10] == first.requested_at[:10] and again.request_sha256 == first.request_sha256
    assert "cached (answered " in footer(again)
    im.infer("Name three rivers.", model="claude-haiku-4.5", temperature=0.3)  # another option: another key
    assert len(messages_sent(claude)) == 2
    im.infer("Name three rivers.", model="claude-haiku-4.5", temperature=0.2, cache=False)  # --no-cache
    assert len(messages_sent(claude)) == 3


def test_off_is_the_default_and_cache_true_turns_it_on_per_call(cached):
    ollama, _ = cached
    im.infer("hello")
    im.infer("hello")
    assert len(messages_sent(ollama)) == 2
    im.infer("hello", cache=True)
    assert im.infer("hello", cache=True).cached and len(messages_sent(ollama)) == 3


def test_replay_never_calls_a_model_and_a_miss_is_one_line_naming_the_hash(cached, monkeypatch):
    ollama, claude = cached
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    with pytest.raises(response_cache.CacheMiss) as miss:
        im.infer("never asked before")
    message = miss.value.message
    assert "\n" not in message and "INFERENCE_CACHE=replay" in message
    assert im.stream("never asked before").result.request_sha256 is None  # nothing ran yet
    assert not ollama.requests and not claude.requests  # not even a health check
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    recorded = im.infer("asked once", model="claude-haiku-4.5")
    assert recorded.request_sha256[:16] not in message
    before = len(claude.requests) + len(ollama.requests)
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    replayed = im.infer("asked once", model="claude-haiku-4.5")
    assert replayed.cached and replayed.text == recorded.text
    assert len(claude.requests) + len(ollama.requests) == before
    assert im.infer("asked once", model="claude-haiku-4.5", cache=True).cached  # --cache keeps replay


def test_the_miss_names_the_key_of_the_request(cached, monkeypatch):
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    running = im.stream("what key?")
    with pytest.raises(response_cache.CacheMiss) as miss:
        running.each(lambda text: None)
    assert running.result.request_sha256[:16] in miss.value.message


def test_the_file_is_portable_redacted_and_keys_a_secret_prompt_by_hash_only(cached, monkeypatch, tmp_path):
    ollama, _ = cached
    ollama.set(echo=True)
    where = tmp_path / "travels-with-the-notebook.sqlite3"
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    monkeypatch.setenv("INFERENCE_CACHE_FILE", str(where))
    secret = "why does login fail? password = 'sup3r-s3cret-pw'"
    first = im.infer(secret)  # stays local (a secret), echoed back by the peer
    assert first.backend == "ollama" and "sup3r-s3cret-pw" in first.text
    assert im.infer(secret).cached
    im.infer("an ordinary question")
    write_behind.flush()  # the file is read behind the API's back: wait for the background write, as an exit does
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("travels-with-the-notebook.sqlite3*"))
    assert b"sup3r-s3cret-pw" not in raw and b"[redacted: a password]" in raw  # the echoed answer, redacted
    with sqlite3.connect(where) as db:  # a plain SQLite file another machine can open
        kept = sorted(json.loads(v)["prompt"] or "" for (v,) in db.execute("SELECT value FROM blobs WHERE kind='response'"))
    assert kept == ["", "an ordinary question"]  # the secret prompt: its hash (the key) only
    info = response_cache.stats(settings.load())
    assert info["entries"] == 2 and info["file"] == str(where) and info["hits"] >= 1
    response_cache.clear(settings.load())
    assert not im.infer(secret).cached


def test_the_key_covers_backend_model_messages_system_and_options():
    key = response_cache.request_key
    base = key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], None, {"temperature": 0.2})
    assert base == key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], None,
                       {"temperature": 0.2, "stream": False})  # streaming does not change the answer
    for changed in (key("ollama", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], None, {"temperature": 0.2}),
                    key("anthropic", "claude-haiku-4-6", [{"role": "user", "content": "hi"}], None, {"temperature": 0.2}),
                    key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi!"}], None, {"temperature": 0.2}),
                    key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], "sys", {"temperature": 0.2}),
                    key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], None, {"max_tokens": 5}),
                    key("anthropic", "claude-haiku-4-5", [{"role": "user", "content": "hi"}], None, {"temperature": 0.2},
                        schema={"type": "object"})):
        assert changed != base


def test_a_map_resumes_through_the_same_cache(cached):
    ollama, _ = cached
    ollama.set(echo=True)
    im.map("Classify: {row}", ["a", "b"], progress=False)
    assert im.infer("Classify: a", cache=True).cached  # one mechanism: a map row answers a cell
    again = im.map("Classify: {row}", ["a", "b", "c"], progress=False)
    assert [r.cached for r in again.rows] == [True, True, False] and len(messages_sent(ollama)) == 3


def test_a_call_that_would_pass_the_kernel_budget_is_refused_with_the_spend_so_far(cached, monkeypatch):
    from inference_magics import budget

    ollama, claude = cached
    monkeypatch.setenv("INFERENCE_BUDGET_USD", f"{budget.kernel_spend() + 0.0008:.6f}")
    im.infer("hello", model="claude-haiku-4.5", max_tokens=100)  # estimated ≈ $0.0005: within the cap
    with pytest.raises(budget.BudgetExceeded) as refused:  # up to 1,000 output tokens: ≈ $0.005, past the cap
        im.infer("hello again", model="claude-haiku-4.5", max_tokens=1000)
    message = refused.value.message
    assert "\n" not in message and "would pass INFERENCE_BUDGET_USD" in message
    assert f"has spent ${budget.kernel_spend():.4f} so far" in message
    assert len(messages_sent(claude)) == 1  # the refused call sent nothing
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    im.infer("local costs nothing")  # a local model is never refused
    assert len(messages_sent(ollama)) == 1


def test_the_daily_budget_counts_from_the_history(cached, monkeypatch):
    from inference_magics import budget

    _, claude = cached
    first = im.infer("hello", model="claude-haiku-4.5", max_tokens=100)
    assert budget.today_spend(settings.load()) == pytest.approx(first.cost_usd)
    monkeypatch.setenv("INFERENCE_DAILY_BUDGET_USD", f"{first.cost_usd + 0.0001:.6f}")
    with pytest.raises(budget.BudgetExceeded, match="spent today \\(UTC\\) so far"):
        im.infer("hello again", model="claude-haiku-4.5", max_tokens=100)
    assert len(messages_sent(claude)) == 1


def test_repeated_samples_of_an_experiment_are_cached_apart(cached, monkeypatch):
    ollama, _ = cached
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    first = im.experiment("Name a colour.", ["llama3.2"], repeat=2)
    assert len({run.result.request_sha256 for run in first.runs}) == 2 and len(messages_sent(ollama)) == 2
    again = im.experiment("Name a colour.", ["llama3.2"], repeat=2)
    assert all(run.result.cached for run in again.runs) and len(messages_sent(ollama)) == 2
    assert im.infer("Name a colour.", model="llama3.2").cached  # sample 1 is the plain request


def test_a_message_batch_past_the_budget_is_not_submitted(cached, monkeypatch):
    from inference_magics import budget, message_batches as batch

    _, claude = cached
    monkeypatch.setenv("INFERENCE_BUDGET_USD", f"{budget.kernel_spend() + 0.001:.6f}")
    with pytest.raises(budget.BudgetExceeded, match="this Message Batch of 3 rows"):
        batch.submit("Summarize: {row}", ["a", "b", "c"], model="claude-haiku-4.5", max_tokens=1000)
    assert not claude.requests_to("/v1/messages/batches")


def test_embeddings_are_recorded_in_the_response_cache_and_replayed_without_a_request(cached, monkeypatch, tmp_path):
    ollama, _ = cached
    monkeypatch.setenv("INFERENCE_CACHE_FILE", str(tmp_path / "portable.sqlite3"))
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    recorded = im.embed(["a cat", "a kitten"], backend="ollama")
    embeds = [r for r in ollama.requests if r.path == "/api/embed"]
    assert len(embeds) == 1
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(tmp_path / "elsewhere"))  # no data-folder cache to fall back on
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    replayed = im.embed(["a kitten", "a cat"], backend="ollama", cache=False)  # replay overrides cache=False
    assert (replayed == recorded[::-1]).all()
    assert len([r for r in ollama.requests if r.path == "/api/embed"]) == 1  # none sent in replay
    with pytest.raises(response_cache.CacheMiss) as miss:
        im.embed(["never embedded"], backend="ollama")
    assert "\n" not in miss.value.message and "1 text(s)" in miss.value.message
    assert len([r for r in ollama.requests if r.path == "/api/embed"]) == 1


def test_a_replayed_answer_reads_like_the_original_cut_at_the_limit_and_free_of_fake_cost(cached, monkeypatch):
    ollama, _ = cached
    ollama.set(tokens=40)
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    first = im.infer("Tell me a long story.", max_tokens=5)
    assert first.stop_reason == "length" and any("cut at the token limit" in n for n in first.notices)
    write_behind.flush()
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    again = im.infer("Tell me a long story.", max_tokens=5)
    assert again.cached and again.text == first.text and again.stop_reason == "length"
    assert again.notices == first.notices  # the "cut at the token limit" notice comes back with it
    # a free (local) answer, first or replayed, shows no cost rather than "≈ $0.0000"
    assert "$" not in footer(first) and "$" not in footer(again), (footer(first), footer(again))
    assert "first token" in footer(first) and "first token" not in footer(again)  # a replay's 0.00 s measures nothing


def test_replay_from_a_missing_or_unreadable_file_names_the_file_not_a_missing_request(cached, monkeypatch, tmp_path):
    """A mistyped INFERENCE_CACHE_FILE or a file that is not SQLite (a Git LFS pointer checked out in
    CI) is not "never recorded": re-recording would not help, restoring the file would."""
    path = tmp_path / "notebooks" / "respones.sqlite3"  # a typo
    monkeypatch.setenv("INFERENCE_CACHE_FILE", str(path))
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    with pytest.raises(response_cache.CacheMiss) as miss:
        im.infer("asked once")
    assert "does not exist" in miss.value.message and str(path) in miss.value.message
    assert not path.exists()  # replay reads; it never creates an empty file
    with pytest.raises(response_cache.CacheMiss) as miss:
        im.embed(["a cat"], backend="ollama")
    assert "does not exist" in miss.value.message
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 8192\n")
    for _ in range(2):  # the second time too (the cache object remembers why it is off)
        with pytest.raises(response_cache.CacheMiss) as miss:
            im.infer("asked once")
        assert "not a database" in miss.value.message and "\n" not in miss.value.message
    assert not messages_sent(cached[0]) and not messages_sent(cached[1])
