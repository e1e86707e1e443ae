"""The `openai` backend: any OpenAI-compatible server. Faults against our peer; the real thing
against llama.cpp's llama-server with a real model."""
import pytest

import inference_magics as im
from tests.conftest import closed_port, needs_local, wait_until


@pytest.fixture
def server(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    return openai_peer


def chat_posts(peer):
    return [r for r in peer.requests if r.path == "/v1/chat/completions"]


def test_streams_text_usage_and_server_speed(server):
    server.set(tokens=20)
    result = im.infer("hello", backend="openai")
    assert result.text == server.expected_text() and result.model == "gemma-3-270m"  # the first listed model
    assert result.stop_reason == "stop" and result.usage.output_tokens == 20 and result.usage.input_tokens > 0
    body = chat_posts(server)[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_options_and_json_mode_reach_the_wire(server):
    result = im.infer("an object please", backend="openai", model="qwen2.5-7b-instruct", system="Be terse.",
                      temperature=0.4, max_tokens=50, format="json")
    body = chat_posts(server)[-1].body
    assert body["model"] == "qwen2.5-7b-instruct" and body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["temperature"] == 0.4 and body["max_tokens"] == 50
    assert body["response_format"] == {"type": "json_object"} and "answer" in result.parsed


def test_a_content_filter_stop_is_said_not_passed_off_as_complete(server):
    server.set(tokens=6, finish_reason="content_filter")
    for stream in (True, False):
        result = im.infer("hello", backend="openai", stream=stream)
        assert result.stop_reason == "content_filter" and result.text == server.expected_text()
        assert any("content filter" in n for n in result.notices), result.notices


def test_max_tokens_and_no_stream(server):
    server.set(tokens=10)
    assert im.infer("hi", backend="openai", max_tokens=3).stop_reason == "length"
    whole = im.infer("hi", backend="openai", stream=False)
    assert whole.text == server.expected_text() and chat_posts(server)[-1].body["stream"] is False


def test_reasoning_content_becomes_thinking(server):
    server.set(reasoning="First, consider the sky.", tokens=3)
    result = im.infer("why?", backend="openai")
    assert result.thinking == "First, consider the sky." and result.text == server.expected_text()


def test_api_key_is_sent_and_a_rejection_is_one_line(monkeypatch, server):
    server.set(api_key="sk-openai-peer-secret-123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-peer-secret-123456789")
    assert im.infer("hi", backend="openai").text
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-000000000000000000")
    im.backends._instances.clear()
    with pytest.raises(im.AuthenticationFailed, match="OPENAI_API_KEY") as err:
        im.infer("hi", backend="openai")
    assert "sk-wrong" not in str(err.value)


def test_unknown_model(server):
    with pytest.raises(im.ModelNotFound, match="no model 'gpt-9'"):
        im.infer("hi", backend="openai", model="gpt-9")


def test_loading_then_ready_is_retried(server):
    server.set(fault="loading_503", fail_times=2)
    assert im.infer("hi", backend="openai").text == server.expected_text()
    assert len(chat_posts(server)) == 3


def test_still_loading_after_the_retries(server):
    server.set(fault="loading_503")
    with pytest.raises(im.RateLimited, match="Loading model"):
        im.infer("hi", backend="openai")


@pytest.mark.parametrize("fault, error, text", [
    ("error_mid_stream", im.BackendError, "failed mid-answer"),
    ("drop_mid_stream", im.BackendError, "broke mid-answer"),
    ("malformed_line", im.BackendError, "not the OpenAI API"),
])
def test_mid_stream_faults_keep_the_partial_text(server, fault, error, text):
    server.set(tokens=10, fault=fault, fault_after=3)
    with pytest.raises(error, match=text) as err:
        im.infer("hi", backend="openai")
    assert err.value.result.text == server.expected_text(3)


def test_html_and_server_errors(server):
    server.set(fault="html")
    with pytest.raises(im.BackendError, match="web page"):
        im.infer("hi", backend="openai")
    server.set(fault="server_error")
    with pytest.raises(im.BackendError, match="HTTP 500"):
        im.infer("hi", backend="openai")


def test_refused_connection(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(im.BackendUnavailable, match="cannot connect to the OpenAI-compatible server"):
        im.infer("hi", backend="openai")


def test_interrupt_closes_the_stream(server):
    server.set(tokens=400, token_delay=0.02)
    seen = []

    def on_text(text):
        seen.append(text)
        if len(seen) == 4:
            raise KeyboardInterrupt

    with pytest.raises(im.InferenceInterrupted):
        im.stream("hi", backend="openai").each(on_text)
    assert wait_until(lambda: server.disconnects == 1)


def test_embeddings_and_models(server):
    from inference_magics import settings
    from inference_magics.backends import get_backend

    backend = get_backend("openai", settings.load())
    vectors = backend.embed(["alpha", "beta"], "nomic-embed-text-v1.5")
    assert len(vectors) == 2 and len(vectors[0]) == 768 and vectors[0] != vectors[1]
    assert [m.name for m in backend.list_models()] == ["gemma-3-270m", "qwen2.5-7b-instruct", "nomic-embed-text-v1.5"]
    assert backend.health().ok


def test_a_remote_server_never_gets_a_private_prompt(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url.replace("127.0.0.1", "localhost.localdomain"))
    with pytest.raises(im.PrivacyError):
        im.infer("my password is hunter2hunter2", backend="openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)  # loopback: this machine
    assert im.infer("my password is hunter2hunter2", backend="openai").backend == "openai"


@needs_local
def test_against_a_real_llama_server(monkeypatch, llama_server):
    monkeypatch.setenv("OPENAI_BASE_URL", llama_server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", llama_server.api_key.get())  # our servers ask for their key
    result = im.infer("What is the capital of France?", backend="openai", max_tokens=12, temperature=0)
    assert result.text.strip() and result.usage.output_tokens > 0 and result.stop_reason in ("stop", "length")
    assert result.model == "gemma-3-270m"
    from inference_magics import settings
    from inference_magics.backends import get_backend

    assert [m.name for m in get_backend("openai", settings.load()).list_models()] == ["gemma-3-270m"]


# --- real servers' dialects (tests/peers/openai_peer.py knobs, each proven with the openai SDK) --
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.mark.parametrize("style", ["openai", "vllm"])
def test_streamed_tool_calls_in_each_servers_pieces(server, style):
    """vLLM opens a call with only its name (no `arguments` key): nothing may be added for it."""
    server.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 40}}], tool_call_style=style)
    result = im.infer("What is 2 + 40?", backend="openai", tools=[add])
    assert [(r.name, r.arguments, r.error) for r in result.tool_runs] == [("add", {"a": 2, "b": 40}, None)]
    assert result.text == "Tool results: 42"


@pytest.mark.parametrize("stream", [True, False])
def test_reasoning_named_reasoning_becomes_thinking(server, stream):
    """Ollama's /v1 and vLLM >= 0.11 send `reasoning`, llama-server and DeepSeek `reasoning_content`."""
    server.set(reasoning="First, consider the sky.", reasoning_field="reasoning", tokens=3)
    result = im.infer("why?", backend="openai", stream=stream)
    assert result.thinking == "First, consider the sky." and result.text == server.expected_text()


def test_an_old_llama_server_error_field_is_not_passed_off_as_an_answer(server):
    """llama-server before Sept. 2025 wrote `error: {...}` then `data: [DONE]`."""
    server.set(tokens=10, fault="error_mid_stream", fault_after=3, error_field=True,
               error_text="the request exceeds the available context size")
    with pytest.raises(im.BackendError, match="failed mid-answer: the request exceeds the available context") as err:
        im.infer("hi", backend="openai")
    assert err.value.result.text == server.expected_text(3) and "\n" not in str(err.value)


def test_max_tokens_refused_is_sent_as_max_completion_tokens(server):
    """OpenAI's o-series and gpt-5 models refuse max_tokens; the request is made again with
    max_completion_tokens, once."""
    server.set(reject_max_tokens=True, tokens=10)
    result = im.infer("hi", backend="openai", max_tokens=3)
    assert result.stop_reason == "length" and result.text == server.expected_text(3)
    first, second = chat_posts(server)
    assert first.body["max_tokens"] == 3 and "max_tokens" not in second.body
    assert second.body["max_completion_tokens"] == 3


@pytest.mark.parametrize("stream", [True, False])
def test_a_refusal_is_shown_not_called_empty(server, stream):
    server.set(refusal="I'm sorry, I can't help with that.")
    result = im.infer("hi", backend="openai", stream=stream)
    assert result.text == "I'm sorry, I can't help with that."
    assert not any("empty answer" in n for n in result.notices), result.notices


def test_a_wrong_path_says_check_the_url(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)  # without /v1: llama-server's 404 "File Not Found"
    with pytest.raises(im.BackendError, match="OPENAI_BASE_URL.*/v1"):
        im.infer("hi", backend="openai", model="gemma-3-270m")
