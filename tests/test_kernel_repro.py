"""Reproducible, cost-aware notebooks in a real kernel: the response cache per cell, replay,
%infer_cache, provenance metadata on the output, estimates and budgets."""


def answers_sent(ollama, claude):
    return [r for r in ollama.requests + claude.requests if r.path in ("/api/chat", "/v1/messages")]


def test_a_repeated_cell_with_the_cache_on_sends_nothing_and_says_cached(kernel, peers_reset):
    ollama, claude = peers_reset
    kernel.run("%infer_cache --clear")
    first = kernel.run("%%infer --cache\nName a colour.")
    assert not first.errors and len(answers_sent(ollama, claude)) == 1
    again = kernel.run("%%infer --cache\nName a colour.")
    assert not again.errors and len(answers_sent(ollama, claude)) == 1
    assert "cached (answered " in again.final_markdown
    meta = again.displays[-1]["content"]["metadata"]["inference_magics"]
    assert meta["cached"] is True and meta["request_sha256"] == first.displays[-1]["content"]["metadata"]["inference_magics"][
        "request_sha256"]
    shown = kernel.run("%infer_cache")
    plain = shown.displays[-1]["content"]["data"]["text/plain"] if shown.displays else \
        shown.of_type("execute_result")[0]["content"]["data"]["text/plain"]
    assert "responses.sqlite3" in plain and "response cache (off)" in plain


def test_replay_sends_no_request_at_all_and_a_miss_is_one_line(kernel, peers_reset):
    ollama, claude = peers_reset
    kernel.run("%infer_cache --clear")
    kernel.run("%env INFERENCE_CACHE=on")
    try:
        kernel.run("%%infer\nRecorded once.")
        ollama.reset()
        claude.reset()
        kernel.run("%env INFERENCE_CACHE=replay")
        hit = kernel.run("%%infer\nRecorded once.")
        assert not hit.errors and "cached (answered " in hit.final_markdown
        miss = kernel.run("%%infer\nNever recorded.")
        (error,) = miss.errors
        assert error["ename"] == "CacheMiss" and len(error["traceback"]) == 1
        assert "INFERENCE_CACHE=replay" in error["traceback"][0] and "\n" not in error["traceback"][0]
        assert not ollama.requests and not claude.requests
    finally:
        kernel.run("%env INFERENCE_CACHE=off")
