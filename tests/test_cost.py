"""Cost accounting at the Claude peer: list prices by model version, caps under concurrency, the real max_tokens, failed and cut calls, tool loops and typed-answer retries."""
import pydantic
import pytest

import inference_magics as im
from inference_magics import budget, cache, history, pricing
from tests.peers.anthropic_peer import DEFAULT_MODELS

LONG = "You are a careful analyst. " + " ".join(f"rule{i}" for i in range(1500))


@pytest.fixture
def claude(peers):
    cache._caches.clear()
    history._stores.clear()
    budget._spent.update(usd=0.0, reserved=0.0)
    yield peers[1]
    cache._caches.clear()
    history._stores.clear()


def sent(peer):
    return [r for r in peer.requests if r.path == "/v1/messages"]


@pytest.mark.parametrize("model,io", [
    ("claude-opus-4-1-20250805", (15.0, 75.0)), ("claude-opus-4-20250514", (15.0, 75.0)),
    ("claude-opus-4-5-20251101", (5.0, 25.0)), ("claude-sonnet-4-5-20250929", (3.0, 15.0)),
    ("claude-sonnet-4-20250514", (3.0, 15.0)), ("claude-haiku-4-5-20251001", (1.0, 5.0)),
    ("claude-3-5-haiku-20241022", (0.80, 4.0)), ("claude-3-haiku-20240307", (0.25, 1.25)),
    ("claude-3-opus-20240229", (15.0, 75.0)), ("claude-sonnet-5", (2.0, 10.0)),
])
def test_dated_ids_are_priced_as_their_version(model, io):
    price = pricing.price_for("anthropic", model)
    assert (price.input, price.output) == io


def test_concurrent_map_rows_cannot_race_past_the_kernel_budget(claude, monkeypatch):
    claude.set(token_delay=0.01, tokens=100)
    per_row = budget.estimate("anthropic", "claude-haiku-4-5", ["Summarize: item 0"], max_tokens=100).cost_usd
    monkeypatch.setenv("INFERENCE_BUDGET_USD", f"{per_row * 2.5:.8f}")  # two rows fit, not three
    mapped = im.map("Summarize: {row}", [f"item {i}" for i in range(8)], model="claude-haiku-4.5", max_tokens=100,
                    concurrency=8, progress=False, cache=False)
    assert len(sent(claude)) == 2 and mapped.failed == 6
    assert budget.kernel_spend() <= per_row * 2.5


def test_a_call_is_checked_with_the_output_limit_it_is_sent_with(claude, monkeypatch):
    claude.set(tokens=3000)  # within the 4,096 tokens the request allows
    monkeypatch.setenv("INFERENCE_BUDGET_USD", "0.005")  # 500 tokens fit (≈ $0.0025), 3,000 do not
    with pytest.raises(budget.BudgetExceeded):
        im.infer("hello", model="claude-haiku-4.5")
    assert not sent(claude) and budget.kernel_spend() == 0


def test_an_unpriced_claude_model_is_not_let_past_a_budget(claude, monkeypatch):
    claude.set(models=({"type": "model", "id": "claude-nova-1", "display_name": "Claude Nova 1",
                        "created_at": "2026-11-01T00:00:00Z"},) + DEFAULT_MODELS)
    monkeypatch.setenv("INFERENCE_BUDGET_USD", "0.000001")
    with pytest.raises(budget.BudgetExceeded, match="no price"):
        im.infer("hello", model="claude-nova-1")
    assert not sent(claude)


def test_a_stream_that_fails_mid_answer_still_counts_against_the_budget(claude, monkeypatch):
    monkeypatch.setenv("INFERENCE_BUDGET_USD", "1")
    claude.set(fault="error_mid_stream", fault_after=5, tokens=40)
    with pytest.raises(im.InferenceError) as failed:
        im.infer("hello there", model="claude-sonnet-4-5", system=LONG)
    assert failed.value.result.text and len(sent(claude)) == 1  # sent, billed, half answered
    assert budget.kernel_spend() > 0  # before: $0, so such calls never counted against the cap


def test_a_tool_loops_usage_keeps_the_prompt_cache_tokens(claude):
    claude.set(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}])

    def lookup(q: str) -> str:
        """Look up q."""
        return "found " + q

    result = im.infer("use the tool", model="claude-sonnet-4-5", system=LONG, tools=[lookup])
    assert len(sent(claude)) == 2
    assert (result.usage.cache_creation_input_tokens, result.usage.cache_read_input_tokens) == (1505, 1505)


def test_a_typed_retry_reports_both_requests(claude):
    seen = {"n": 0}

    class Paper(pydantic.BaseModel):
        title: str

        @pydantic.field_validator("title")
        @classmethod
        def wrong_the_first_time(cls, value):
            seen["n"] += 1
            if seen["n"] == 1:
                raise ValueError("first time wrong")
            return value

    result = im.infer("Extract", model="claude-haiku-4.5", schema=Paper)
    assert len(sent(claude)) == 2
    assert result.cost_usd == pytest.approx(budget.kernel_spend())  # both requests, as spent
