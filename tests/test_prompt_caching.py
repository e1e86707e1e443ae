"""Claude prompt caching: long stable prefixes go out marked cache_control ephemeral, the peer
answers with the usage fields the API reports, and the cost counts cache writes and reads at
their own prices (from the dated table, overridable with INFERENCE_PRICES)."""
import pytest

import inference_magics as im
from inference_magics import cache, history, pricing, settings
from inference_magics.notebook.render import footer

SONNET_45 = "claude-sonnet-4-5"  # caches prefixes of 1,024 tokens and more
LONG_SYSTEM = "You are a careful analyst. " + " ".join(f"rule{i}" for i in range(1500))  # 1,505 words


@pytest.fixture
def claude(peers):
    cache._caches.clear()
    history._stores.clear()
    yield peers[1]
    cache._caches.clear()
    history._stores.clear()


def sent(peer):
    return [r.body for r in peer.requests if r.path == "/v1/messages"]


def test_a_long_system_prompt_is_written_once_then_read(claude):
    first = im.infer("First question?", model=SONNET_45, system=LONG_SYSTEM)
    second = im.infer("Another question?", model=SONNET_45, system=LONG_SYSTEM)
    bodies = sent(claude)
    assert bodies[0]["system"] == [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    assert first.usage.cache_creation_input_tokens == 1505 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 1505 and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == 2  # only the new question is read afresh
    price = pricing.PRICES["sonnet"]
    assert second.cost_usd == pytest.approx((2 * 3.0 + second.usage.output_tokens * 15.0 + 1505 * 0.30) / 1e6)
    assert first.cost_usd == pytest.approx((2 * 3.0 + first.usage.output_tokens * 15.0 + 1505 * 3.75) / 1e6)
    assert (price.cache_write, price.cache_read) == (3.75, pytest.approx(0.3))
    assert "prompt cache: 0 written / 1505 read" in footer(second)


def test_short_requests_go_out_unmarked(claude):
    im.infer("hello", model=SONNET_45, system="Be brief.")
    (body,) = sent(claude)
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "hello"}]


def test_a_prefix_below_the_models_minimum_is_marked_but_not_cached(claude):
    """Haiku 4.5 caches from 4,096 tokens: 1,505 words are sent marked and processed normally."""
    first = im.infer("q1", model="claude-haiku-4.5", system=LONG_SYSTEM)
    second = im.infer("q2", model="claude-haiku-4.5", system=LONG_SYSTEM)
    assert "cache_control" in str(sent(claude)[0]["system"])
    assert second.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == 1506


def test_chat_history_is_marked_before_the_new_turn(claude):
    history_turns = [{"role": "user", "content": LONG_SYSTEM}, {"role": "assistant", "content": "Noted."}]
    im.infer("And now?", model=SONNET_45, messages=history_turns)
    again = im.infer("And then?", model=SONNET_45, messages=history_turns)
    body = sent(claude)[0]
    assert body["messages"][1]["content"] == [{"type": "text", "text": "Noted.", "cache_control": {"type": "ephemeral"}}]
    assert body["messages"][2] == {"role": "user", "content": "And now?"}
    assert again.usage.cache_read_input_tokens == 1506


def test_a_map_templates_fixed_part_is_cached_across_rows(claude):
    instruction = "Classify each review by sentiment. " + " ".join(f"guideline{i}" for i in range(1200))
    mapped = im.map(instruction + "\n\nReview: {row}", ["good film", "bad film", "fine film"], model=SONNET_45,
                    concurrency=1, progress=False, cache=False)
    assert not mapped.failed
    first = sent(claude)[0]["messages"][0]["content"]
    assert first[0]["cache_control"] == {"type": "ephemeral"} and first[0]["text"] == instruction + "\n\nReview: "
    assert first[1] == {"type": "text", "text": "good film"}
    usages = [row.result.usage for row in mapped.rows]
    assert [u.cache_creation_input_tokens for u in usages] == [1206, 0, 0]
    assert [u.cache_read_input_tokens for u in usages] == [0, 1206, 1206]


def test_price_overrides_from_settings_and_a_bad_table_is_one_line(claude, monkeypatch):
    monkeypatch.setenv("INFERENCE_PRICES", '{"claude-sonnet-4-5": {"input": 10, "output": 20, "cache_read": 1}}')
    result = im.infer("hello", model=SONNET_45)
    expected = (result.usage.input_tokens * 10 + result.usage.output_tokens * 20) / 1e6
    assert result.cost_usd == pytest.approx(expected)
    overrides = settings.load().prices
    assert pricing.estimate_cost("anthropic", "claude-sonnet-4-5-20250929", 0, 0, cache_write_tokens=1_000_000,
                                 cache_read_tokens=1_000_000, overrides=overrides) == pytest.approx(12.5 + 1)
    monkeypatch.setenv("INFERENCE_PRICES", "{sonnet: 3}")
    with pytest.raises(im.ConfigError, match="INFERENCE_PRICES is not valid JSON"):
        settings.load()
    monkeypatch.setenv("INFERENCE_PRICES", '{"sonnet": [3]}')
    with pytest.raises(im.ConfigError, match="must be \\[input, output\\]"):
        settings.load()


def test_the_cost_arithmetic_and_the_table_is_dated_with_its_source():
    assert pricing.PRICES_SOURCE.startswith("https://") and pricing.PRICES_DATE[:2] == "20"
    cost = pricing.estimate_cost("anthropic", "claude-opus-4-6", 1000, 200, cache_write_tokens=4000,
                                 cache_read_tokens=8000)
    assert cost == pytest.approx((1000 * 5 + 200 * 25 + 4000 * 6.25 + 8000 * 0.5) / 1e6)
    assert pricing.estimate_cost("anthropic", "claude-opus-4-6", 1000, 200, batch=True) == pytest.approx(
        (1000 * 5 + 200 * 25) / 2e6)
    assert pricing.estimate_cost("ollama", "llama3.2", 1000, 200) is None
