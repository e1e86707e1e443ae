"""The API over the Anthropic Messages wire: the official SDK against the loopback peer."""
import pytest

import inference_magics as im
from tests.conftest import needs_local

SENTINEL = "sk-ant-sentinel-key-DO-NOT-LEAK-0123456789"


def messages_posts(peer):
    return [r for r in peer.requests if r.path == "/v1/messages"]


def test_streams_with_usage_cost_and_resolved_family(claude):
    claude.set(tokens=15)
    result = im.infer("hello", model="sonnet")
    assert result.text == claude.expected_text()
    assert result.backend == "anthropic" and result.model == "claude-sonnet-4-6"  # newest Sonnet in the list
    assert "sonnet = claude-sonnet-4-6" in result.route.reason
    assert result.stop_reason == "end_turn" and result.usage.output_tokens == 15
    expected_cost = (result.usage.input_tokens * 3 + 15 * 15) / 1e6
    assert result.cost_usd == pytest.approx(expected_cost)
    body = messages_posts(claude)[-1].body
    assert body["stream"] is True and body["model"] == "claude-sonnet-4-6" and body["max_tokens"] > 0


def test_original_alias_still_works_and_shows_its_deprecation(claude):
    result = im.infer("hello", model="claude-sonnet-4.5")
    assert messages_posts(claude)[-1].body["model"] == "claude-sonnet-4-5"
    assert any("deprecated" in n and "claude-sonnet-4-5" in n for n in result.notices)


def test_default_model_is_the_sonnet_family(claude):
    assert im.infer("hi", backend="anthropic").model == "claude-sonnet-4-6"


def test_system_temperature_and_max_tokens_reach_the_wire(claude):
    claude.set(tokens=30)
    result = im.infer("hi", model="haiku", system="Be terse.", temperature=0.2, max_tokens=7)
    body = messages_posts(claude)[-1].body
    assert body["system"] == "Be terse." and body["temperature"] == 0.2 and body["max_tokens"] == 7
    assert result.stop_reason == "max_tokens" and result.usage.output_tokens == 7


def test_json_is_instructed_then_validated(claude):
    claude.set(text='{"city": "Paris"}')
    result = im.infer("capital of France as JSON", model="haiku", format="json")
    assert result.parsed == {"city": "Paris"}
    assert "JSON" in messages_posts(claude)[-1].body["system"]


def test_temperature_above_one_is_refused_for_claude(claude):
    with pytest.raises(im.ConfigError, match="from 0 to 1"):
        im.infer("hi", model="haiku", temperature=1.5)


def test_no_key_says_how_to_set_it(monkeypatch, claude):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(im.AuthenticationFailed, match="no ANTHROPIC_API_KEY is set .* ./.env"):
        im.infer("hi", model="haiku")


def test_rejected_key_never_echoes_the_key(monkeypatch, claude):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    with pytest.raises(im.AuthenticationFailed) as err:
        im.infer("hi", model="haiku")
    assert "401" in err.value.message and SENTINEL not in str(err.value) and SENTINEL not in repr(err.value)
    assert SENTINEL not in "".join(err.value._render_traceback_())


def test_unknown_model_is_named(claude):
    with pytest.raises(im.ModelNotFound, match="no model 'claude-nonesuch-9'"):
        im.infer("hi", model="claude-nonesuch-9")


def test_rate_limit_is_retried_then_succeeds(claude):
    claude.set(fault="rate_limit", fail_times=1, retry_after="0")
    result = im.infer("hi", model="haiku")
    assert result.text == claude.expected_text() and len(messages_posts(claude)) == 2


def test_rate_limit_after_the_retries_is_one_line(claude):
    claude.set(fault="rate_limit", retry_after="0")
    with pytest.raises(im.RateLimited, match="429") as err:
        im.infer("hi", model="haiku")
    assert len(messages_posts(claude)) == 3 and "\n" not in err.value.message


def test_overloaded_after_the_retries(claude):
    claude.set(fault="overloaded", retry_after="0")
    with pytest.raises(im.RateLimited, match="529 overloaded_error"):
        im.infer("hi", model="haiku")


@pytest.mark.parametrize("fault, error, text", [
    ("forbidden", im.AuthenticationFailed, "403"),
    ("too_large", im.BackendError, "413"),
    ("billing", im.AuthenticationFailed, "402 billing_error.*add credits or check billing"),
    ("server_error", im.BackendError, "HTTP 500"),
    ("html", im.BackendError, "web page, not the Anthropic API"),
])
def test_status_faults_are_classified(claude, fault, error, text):
    claude.set(fault=fault, retry_after="0")
    with pytest.raises(error, match=text):
        im.infer("hi", model="haiku")


def test_error_event_mid_stream_keeps_the_partial_text(claude):
    claude.set(tokens=10, fault="error_mid_stream", fault_after=3)
    with pytest.raises(im.InferenceError, match="failed mid-answer") as err:
        im.infer("hi", model="haiku")
    assert err.value.result.text == "word0 word1 word2"


def test_dropped_connection_keeps_the_partial_text(claude):
    claude.set(tokens=10, fault="drop_mid_stream", fault_after=4)
    with pytest.raises(im.BackendError, match="partial answer is kept") as err:
        im.infer("hi", model="haiku")
    assert err.value.result.text == "word0 word1 word2 word3"


@pytest.mark.parametrize("prompt", [
    "Here is my key -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY----- explain it",
    "password = 'correct-horse-battery'",
    "My card is 4111 1111 1111 1111",
    "This is confidential: design a distributed system architecture",
    "Prove this theorem; token: ghp_abcdefghijklmnopqrstuvwxyz0123456789",
])
def test_private_prompts_never_reach_the_cloud(peers, prompt):
    ollama, claude = peers
    assert im.infer(prompt).backend == "ollama"  # routed locally
    for how in (dict(backend="anthropic"), dict(model="claude-opus-4.5"), dict(model="sonnet")):
        with pytest.raises(im.PrivacyError):
            im.infer(prompt, **how)
    with pytest.raises(im.PrivacyError):  # a secret in the system prompt or the history counts too
        im.infer("summarize", model="haiku", system=prompt)
    with pytest.raises(im.PrivacyError):
        im.infer("and now?", model="haiku", messages=[{"role": "user", "content": prompt},
                                                     {"role": "assistant", "content": "ok"}])
    assert not messages_posts(claude)


def test_complex_reasoning_routes_to_claude_with_a_reason(peers):
    result = im.infer("Design a distributed system architecture for a chat app.")
    assert result.backend == "anthropic" and "complex reasoning" in result.route.reason


def test_family_resolution_falls_back_when_the_list_cannot_be_read(monkeypatch, claude):
    claude.set(models=[])
    assert im.route("hi", model="opus").model == "claude-opus-4-6"


@needs_local
def test_against_llama_server_an_implementation_we_did_not_write(monkeypatch, llama_server):
    """llama.cpp's llama-server speaks the Messages API (named SSE events) with a real model."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llama_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", llama_server.api_key.get())  # llama-server takes it as x-api-key too
    pieces = []
    result = im.stream("What is the capital of France?", model="claude-haiku-4-5", max_tokens=12,
                       temperature=0).each(pieces.append)
    assert result.text.strip() and "".join(pieces) == result.text
    assert result.backend == "anthropic" and result.stop_reason in ("end_turn", "max_tokens", "stop_sequence")
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert result.metrics.ttft_s is not None
    # the non-streaming path: a finished message with its usage (greedy, so the same every run)
    whole = im.infer("Name a colour.", model="claude-haiku-4-5", max_tokens=8, stream=False, temperature=0)
    assert whole.error is None and whole.usage.output_tokens > 0


# --- what the real Messages API does that the peer once did not model ---------------------------------
@pytest.mark.parametrize("stop, notice", [("refusal", "declined"), ("model_context_window_exceeded", "context window")])
def test_refusal_and_context_window_stops_are_said_not_passed_off_as_complete(claude, stop, notice):
    """stop_reason `refusal` (streaming classifiers stopped the answer) and `model_context_window_exceeded`
    (cut because the context filled) come with partial text; a reader must not take it as whole."""
    claude.set(tokens=6, stop_reason=stop)
    for stream in (True, False):
        result = im.infer("hello", model="haiku", stream=stream)
        assert result.stop_reason == stop
        assert any(notice in n for n in result.notices), result.notices


def test_a_blank_first_typed_answer_is_not_sent_back_as_a_blank_assistant_turn(claude):
    """The API refuses a non-final message with empty content, and any whitespace-only text block
    ("text content blocks must contain non-whitespace text"): the retry must not send one."""
    from inference_magics.typed_answers import AnswerInvalid

    claude.set(text="\n")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    with pytest.raises(AnswerInvalid):  # both answers blank: invalid, not an HTTP 400 from the API
        im.infer("capital of France", model="haiku", schema=schema)
    retry = messages_posts(claude)[-1].body["messages"]
    assert all(not isinstance(m["content"], str) or m["content"].strip() for m in retry)


def test_whitespace_text_before_a_tool_call_is_not_sent_as_a_block():
    from inference_magics.backends.anthropic import _wire_messages

    wired = _wire_messages([{"role": "user", "content": "1+2?"},
                            {"role": "assistant", "content": "\n\n", "tool_calls": [{"id": "toolu_1", "name": "add",
                                                                                      "arguments": {"a": 1}}]},
                            {"role": "tool", "tool_call_id": "toolu_1", "content": "3"}])
    assert wired[1]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1}}]


def test_an_unknown_batch_is_not_called_an_unknown_model(claude):
    from inference_magics import settings
    from inference_magics.backends import get_backend

    with pytest.raises(im.InferenceError) as caught:
        get_backend("anthropic", settings.load()).batch_status("msgbatch_01nope")
    assert "no model" not in str(caught.value) and "msgbatch_01nope" in str(caught.value)
