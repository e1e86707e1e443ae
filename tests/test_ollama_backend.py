"""The API over the Ollama wire: real HTTP to the loopback Ollama peer."""
import threading
import time

import pytest

import inference_magics as im
from tests.conftest import closed_port, wait_until


@pytest.fixture
def ollama(monkeypatch, ollama_peer):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    return ollama_peer


def last_chat(peer):
    return [r for r in peer.requests if r.path == "/api/chat"][-1].body


def test_streams_the_whole_answer_with_metrics(ollama):
    ollama.set(tokens=25)
    result = im.infer("What is the capital of France?")
    assert result.text == ollama.expected_text() and str(result) == result.text
    assert (result.backend, result.model, result.stop_reason) == ("ollama", "llama3.2:latest", "stop")
    assert result.usage.output_tokens == 25 and result.usage.input_tokens > 0
    assert result.metrics.ttft_s is not None and result.metrics.total_s >= result.metrics.ttft_s
    assert result.cost_usd is None  # local models cost nothing per token
    assert result.route.reason.startswith("default backend")


def test_stream_yields_deltas_as_they_arrive(ollama):
    ollama.set(tokens=10, token_delay=0.05)
    running = im.stream("hello")
    arrivals = []
    for delta in running:
        arrivals.append((time.monotonic(), delta))
    assert len(arrivals) == 10 and "".join(d for _, d in arrivals) == ollama.expected_text()
    assert arrivals[-1][0] - arrivals[0][0] > 0.2  # tokens were not buffered into one piece
    assert running.result.text == ollama.expected_text()


def test_options_reach_the_wire(ollama):
    im.infer("hi", system="Be terse.", temperature=0.3, max_tokens=5, model="llama3.2:3b")
    body = last_chat(ollama)
    assert body["model"] == "llama3.2:3b" and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["messages"][-1]["content"] == "hi"
    assert body["options"]["temperature"] == 0.3 and body["options"]["num_predict"] == 5


def test_max_tokens_cuts_the_answer_and_says_so(ollama):
    ollama.set(tokens=20)
    result = im.infer("hi", max_tokens=4)
    assert result.stop_reason == "length" and result.usage.output_tokens == 4
    assert any("token limit" in notice for notice in result.notices)


def test_code_prompt_uses_the_code_model(ollama):
    result = im.infer("def f(x):\n    return x * 2\n\nExplain this.")
    assert result.model == "qwen2.5-coder:7b" and last_chat(ollama)["model"] == "qwen2.5-coder:7b"


def test_no_stream_returns_the_same_text(ollama):
    ollama.set(tokens=8)
    result = im.infer("hi", stream=False)
    assert result.text == ollama.expected_text() and last_chat(ollama)["stream"] is False


def test_json_format_is_parsed(ollama):
    result = im.infer("Give me an object", format="json")
    assert last_chat(ollama)["format"] == "json"
    assert isinstance(result.parsed, dict) and "answer" in result.parsed


def test_invalid_json_is_a_clear_error_and_keeps_the_raw_text(ollama):
    ollama.set(text="certainly not json")
    with pytest.raises(im.BackendError) as err:
        im.infer("Give me an object", format="json")
    assert "not valid JSON" in err.value.message and err.value.result.text == "certainly not json"


def test_model_not_pulled_names_the_pull_command_and_installed_models(ollama):
    with pytest.raises(im.ModelNotFound) as err:
        im.infer("hi", model="llama3.3:70b")
    message = err.value.message
    assert "`ollama pull llama3.3:70b`" in message and "llama3.2:latest" in message and "\n" not in message


def test_refused_connection_is_reported_fast_with_the_fix(monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(im.BackendUnavailable) as err:
        im.infer("hi")
    assert "cannot connect to Ollama at http://127.0.0.1:" in err.value.message
    assert "ollama serve" in err.value.message


def test_error_mid_stream_keeps_the_partial_text(ollama):
    ollama.set(tokens=10, fault="error_mid_stream", fault_after=3)
    with pytest.raises(im.BackendError) as err:
        im.infer("hi")
    assert "failed mid-answer" in err.value.message
    assert err.value.result.text == "word0 word1 word2" and err.value.result.error


def test_an_error_before_any_text_blames_the_server_not_the_model_name(ollama):
    ollama.set(fault="error_mid_stream", fault_after=0, error_text="llama runner process has terminated: exit status 2")
    with pytest.raises(im.BackendError) as err:
        im.infer("hi")
    message = err.value.message
    assert "HTTP 500" in message and "exit status 2" in message and "server log" in message
    assert "check the model name" not in message and "\n" not in message


def test_a_cloud_model_on_a_server_not_signed_in_says_to_sign_in(ollama):
    ollama.set(fault="unauthorized_401")
    with pytest.raises(im.AuthenticationFailed) as err:
        im.infer("hi", model="gpt-oss:120b-cloud")
    assert "ollama signin" in err.value.message and "\n" not in err.value.message


def test_dropped_connection_keeps_the_partial_text(ollama):
    ollama.set(tokens=10, fault="drop_mid_stream", fault_after=4)
    with pytest.raises(im.BackendError) as err:
        im.infer("hi")
    assert err.value.result.text == "word0 word1 word2 word3"
    assert "partial answer is kept" in err.value.message


def test_malformed_line_is_named(ollama):
    ollama.set(fault="malformed_line", fault_after=2)
    with pytest.raises(im.BackendError, match="not Ollama's protocol") as err:
        im.infer("hi")
    assert err.value.result.text == "word0 word1"


def test_html_500_says_it_is_not_ollama(ollama):
    ollama.set(fault="http_500_html")
    with pytest.raises(im.BackendError, match="web page, not the Ollama API"):
        im.infer("hi")


def test_busy_server_is_a_rate_limit(ollama):
    ollama.set(fault="busy_503")
    with pytest.raises(im.RateLimited, match="busy"):
        im.infer("hi")


def test_a_429_is_a_rate_limit_not_the_model_names_fault(ollama):
    ollama.set(fault="rate_limited_429")
    with pytest.raises(im.RateLimited) as caught:
        im.infer("hi")
    assert "rate limiting" in caught.value.message and "check the model name" not in caught.value.message


def test_a_server_that_never_answers_is_bounded_by_ollama_timeout(monkeypatch, ollama):
    monkeypatch.setenv("OLLAMA_TIMEOUT", "400")
    ollama.set(fault="hang")
    with pytest.raises(im.BackendError, match="OLLAMA_TIMEOUT"):
        im.infer("hi")


def test_leaving_a_stream_early_closes_the_connection(ollama):
    ollama.set(tokens=200, token_delay=0.02)
    running = im.stream("hi")
    for i, _ in enumerate(running):
        if i == 3:
            break
    running.close()
    assert running.result.interrupted and running.result.text == "word0 word1 word2 word3"
    assert wait_until(lambda: ollama.disconnects == 1)


def test_an_interrupt_closes_the_connection_and_keeps_the_partial(ollama):
    ollama.set(tokens=500, token_delay=0.02)
    running = im.stream("hi")
    seen = []

    def on_text(text):
        seen.append(text)
        if len(seen) == 5:
            raise KeyboardInterrupt  # what a kernel interrupt looks like to the cell's code

    with pytest.raises(im.InferenceInterrupted) as err:
        running.each(on_text)
    assert isinstance(err.value, KeyboardInterrupt)
    assert err.value.result.interrupted and err.value.result.text == "".join(seen)
    assert wait_until(lambda: ollama.disconnects == 1)


def test_unreachable_ollama_falls_back_to_claude_only_when_allowed(monkeypatch, peers):
    ollama, claude = peers
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    result = im.infer("What is the capital of France?")
    assert result.backend == "anthropic" and "unreachable" in result.route.reason
    before = len(claude.requests)
    with pytest.raises(im.BackendUnavailable):
        im.infer("This is confidential: what is the capital of France?")
    with pytest.raises(im.BackendUnavailable):
        im.infer("What is the capital of France?", model="llama3.2:3b")  # an explicit model never moves
    assert len(claude.requests) == before


def test_streams_from_threads_do_not_mix(ollama):
    ollama.set(tokens=30, token_delay=0.005)
    results = {}

    def run(name):
        results[name] = im.infer(f"prompt {name}").text

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(text == ollama.expected_text() for text in results.values()) and len(results) == 4


@pytest.mark.parametrize("kwargs, text", [
    (dict(temperature=5), "temperature must be a number from 0 to 2"),
    (dict(temperature=-1), "temperature must be a number from 0 to 2"),
    (dict(max_tokens=0), "max_tokens must be a whole number"),
    (dict(max_tokens=10**9), "max_tokens must be a whole number"),
    (dict(format="yaml"), "format must be 'json'"),
])
def test_bad_options_are_refused_before_any_request(ollama, kwargs, text):
    with pytest.raises(im.ConfigError, match=text):
        im.infer("hi", **kwargs)
    assert not ollama.requests


def test_empty_prompt_is_refused(ollama):
    with pytest.raises(im.ConfigError, match="prompt is empty"):
        im.infer("   \n")


def test_a_thinking_model_reasons_before_it_answers(ollama):
    ollama.set(tokens=4)
    running = im.stream("why is the sky blue?", model="qwen3:4b")
    order = []
    result = running.each(lambda t: order.append("text"), lambda t: order.append("thinking"))
    assert result.thinking == ollama.knobs["thinking"] and result.text == ollama.expected_text()
    assert order.index("text") > order.index("thinking") and order[-1] == "text"
    assert im.infer("why?", model="qwen3:4b", stream=False).thinking == ollama.knobs["thinking"]


def test_a_with_block_closes_the_stream_and_the_result_has_the_text_so_far(ollama):
    ollama.set(tokens=200, token_delay=0.02)
    with im.stream("hi") as running:
        for i, _ in enumerate(running):
            if i == 2:
                assert running.result.text == "word0 word1 word2"  # readable mid-stream
                break
    assert running.result.interrupted and running.result.text == "word0 word1 word2"
    assert wait_until(lambda: ollama.disconnects == 1)


def test_requests_in_a_row_reuse_one_connection(ollama):
    for _ in range(5):
        im.infer("hi")
    # the peer cannot see sockets; the client's connection pool can (httpx 0.28 internals, pinned)
    from inference_magics import settings
    from inference_magics.backends import get_backend

    pool = get_backend("ollama", settings.load())._client._client._transport._pool
    assert len(pool.connections) == 1  # drained to the end, each response returned its connection
