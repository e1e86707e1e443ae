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


def shown(run) -> str:
    """What a failed cell shows: a UsageError goes to stderr, an InferenceError is one error line."""
    return run.stderr + "".join("".join(e["traceback"]) for e in run.errors)


def run_answering(kernel, code: str, answer: str):
    """Execute with a stdin channel, as JupyterLab does, and answer the kernel's input() prompt."""
    from tests.kernel_harness import Execution

    msg_id = kernel.client.execute(code, allow_stdin=True)
    request = kernel.client.get_stdin_msg(timeout=60)
    assert request["msg_type"] == "input_request"
    kernel.client.input(answer)
    return request["content"]["prompt"], kernel.collect(Execution(msg_id))


def test_a_costly_map_asks_first_declined_sends_nothing_accepted_runs(kernel, peers_reset):
    _, claude = peers_reset
    kernel.run("%env INFERENCE_CONFIRM_USD=0.0001\nreviews = ['good film', 'bad film', 'fine film']")
    try:
        cell = "%%infer --map reviews claude-haiku-4.5 --max-tokens 100\nClassify: {row}"
        question, declined = run_answering(kernel, cell, "n")
        assert "above INFERENCE_CONFIRM_USD=$0.00" in question and "with --batch-api it would be about $" in question
        assert "estimate: 3 requests" in declined.stdout and "on claude-haiku-4-5" in declined.stdout
        assert declined.reply["status"] == "error" and "not started: declined" in shown(declined)
        assert not claude.requests_to("/v1/messages")
        question, accepted = run_answering(kernel, cell, "y")
        assert not accepted.errors and len(claude.requests_to("/v1/messages")) == 3
        unasked = kernel.run(cell)  # no stdin (a headless run): not started, and it says how to allow it
        assert "this front end cannot ask" in shown(unasked) and len(claude.requests_to("/v1/messages")) == 3
        question, _ = run_answering(kernel, "%%infer --map reviews --batch-api claude-haiku-4.5\nClassify: {row}", "n")
        assert "--batch-api it would be" not in question  # already half price
    finally:
        kernel.run("%env INFERENCE_CONFIRM_USD=1.00")


def test_explain_counts_tokens_with_claudes_endpoint_and_prices_them(kernel, peers_reset):
    ollama, claude = peers_reset
    run = kernel.run("%%infer --explain claude-haiku-4.5 --max-tokens 200\nWhat is the boiling point of water?")
    shown = run.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert shown.startswith("anthropic · ") and "counted by Claude's token-counting endpoint" in shown
    assert "up to 200 output tokens on claude-haiku-4-5: ≈ $0.0010" in shown
    assert len(claude.requests_to("/v1/messages/count_tokens")) == 1 and not claude.requests_to("/v1/messages")
    local = kernel.run("%%infer --explain\nWhat is the boiling point of water?")
    shown = local.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert "approximate: 4 characters a token" in shown and "no charge per token" in shown


def test_infer_cost_shows_spend_by_model_and_by_day(kernel, peers_reset):
    kernel.run("%%infer claude-haiku-4.5\nhello")
    run = kernel.run("%infer_cost --out spend")
    texts = [d["content"]["data"].get("text/plain", "") for d in run.displays]
    assert any("spend by model" in t and "anthropic · claude-haiku-4-5" in t for t in texts)
    assert any("spend by day" in t for t in texts) and any("image/png" in d["content"]["data"] for d in run.displays)
    assert "spent: this kernel $" in run.stdout
    check = kernel.run("print(spend['usd'].sum() > 0, list(spend.columns)[:3])")
    assert "True ['day', 'backend', 'model']" in check.stdout


def test_an_experiments_table_and_a_maps_table_carry_one_record_per_answer(kernel, peers_reset):
    run = kernel.run("%%experiment --models llama3.2,claude-haiku-4.5 --repeat 2 --max-tokens 20\nName a colour.")
    records = [d["content"]["metadata"].get("inference_magics") for d in run.displays]
    (table,) = [r for r in records if r]
    assert table["kind"] == "experiment" and len(table["answers"]) == 4
    assert sorted(a["backend"] for a in table["answers"]) == ["anthropic", "anthropic", "ollama", "ollama"]
    assert all(a["options"] == {"max_tokens": 20} and a["messages_sha256"] for a in table["answers"])
    kernel.run("items = ['x', 'y']")
    mapped = kernel.run("%%infer --map items --no-cache\nSay {row}")
    (record,) = [d["content"]["metadata"]["inference_magics"] for d in mapped.displays
                 if "inference_magics" in d["content"].get("metadata", {})]
    assert record["kind"] == "map" and [a["backend"] for a in record["answers"]] == ["ollama", "ollama"]
