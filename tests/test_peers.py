"""The test peers speak the wire protocols faithfully: proven with the official clients."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import anthropic
import httpx
import httpx2
import ollama
import pytest

from tests.peers import AnthropicPeer, OllamaPeer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = [{"role": "user", "content": "Say something short"}]


@pytest.fixture(scope="module")
def oll():
    with OllamaPeer() as peer:
        yield peer


@pytest.fixture(scope="module")
def ant():
    with AnthropicPeer() as peer:
        yield peer


@pytest.fixture(autouse=True)
def _fresh(request):
    """Every test starts from default knobs and empty records."""
    for name in ("oll", "ant"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture
def oc(oll):
    return ollama.Client(host=oll.url, timeout=10)


@pytest.fixture
def ac(ant):
    return anthropic.Anthropic(base_url=ant.url, api_key=ant.api_key, max_retries=0, timeout=10)


# ---------------------------------------------------------------- Ollama: basics

def test_ollama_root_version_and_routes(oll):
    r = httpx.get(oll.url + "/")
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert r.headers["content-type"].startswith("text/plain")
    h = httpx.head(oll.url + "/")
    assert h.status_code == 200 and h.content == b""
    assert httpx.get(oll.url + "/api/version").json() == {"version": "0.12.6"}
    r = httpx.get(oll.url + "/api/nope")
    assert (r.status_code, r.text, r.headers["content-type"]) == (404, "404 page not found", "text/plain")
    r = httpx.get(oll.url + "/api/chat")
    assert (r.status_code, r.text) == (405, "405 method not allowed")


def test_ollama_unknown_route_via_client(oll):
    # A host with a stray path (a misconfigured OLLAMA_HOST) hits gin's plain-text 404.
    with pytest.raises(ollama.ResponseError) as ei:
        ollama.Client(host=oll.url + "/v1").list()
    assert ei.value.status_code == 404 and ei.value.error == "404 page not found"


def test_ollama_streaming_chat(oll, oc):
    chunks = list(oc.chat(model="llama3.2", messages=USER, stream=True))
    assert "".join(c.message.content for c in chunks) == oll.expected_text()
    assert len(chunks) == 13 and not any(c.done for c in chunks[:-1])
    last = chunks[-1]
    assert last.done and last.done_reason == "stop" and last.message.content == ""
    assert last.eval_count == 12 and last.prompt_eval_count == 3
    assert last.total_duration >= last.load_duration + last.prompt_eval_duration + last.eval_duration
    assert chunks[0].total_duration is None   # metrics only on the final chunk
    assert oll.completed == 1


def test_ollama_wire_shape_and_default_stream(oll):
    # No "stream" field: the server streams (the official client always sends one).
    r = httpx.post(oll.url + "/api/chat", json={"model": "llama3.2", "messages": USER})
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])   # one object per line, no blank lines
    objs = [json.loads(x) for x in lines[:-1]]
    assert set(objs[0]) == {"model", "created_at", "message", "done"}
    assert objs[0]["created_at"].endswith("Z") and objs[0]["model"] == "llama3.2"
    assert set(objs[-1]) == {"model", "created_at", "message", "done", "done_reason", "total_duration",
                             "load_duration", "prompt_eval_count", "prompt_eval_duration",
                             "eval_count", "eval_duration"}
    assert all(isinstance(objs[-1][k], int) for k in ("total_duration", "eval_duration"))


def test_ollama_nonstreaming_chat_and_num_predict(oll, oc):
    r = oc.chat(model="llama3.2", messages=USER)
    assert r.message.content == oll.expected_text() and r.done_reason == "stop"
    raw = httpx.post(oll.url + "/api/chat", json={"model": "llama3.2", "messages": USER, "stream": False})
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    r = oc.chat(model="llama3.2", messages=USER, options={"num_predict": 4})
    assert r.message.content == oll.expected_text(4) and r.done_reason == "length" and r.eval_count == 4


def test_ollama_text_knob_json_format_and_load(oll, oc):
    oll.set(text="Hello,  world!\nBye")
    assert "".join(c.message.content for c in oc.chat(model="llama3.2", messages=USER, stream=True)) \
        == "Hello,  world!\nBye"
    oll.reset()
    r = oc.chat(model="qwen2.5-coder:7b", messages=USER, format="json")
    assert json.loads(r.message.content) == {"answer": oll.expected_text()}
    assert r.message.content == oll.expected_text(json=True)
    r = oc.chat(model="llama3.2", messages=[])
    assert r.done_reason == "load" and r.message.content == ""


def test_ollama_load_delay_is_a_cold_models_load_duration(oll, oc):
    # A model not in memory loads before its first token and says so in load_duration; once
    # loaded (or loaded by an empty-messages request) the next generation loads nothing.
    oll.set(load_delay=0.3)
    cold = list(oc.chat(model="llama3.2", messages=USER, stream=True))[-1]
    warm = oc.chat(model="llama3.2", messages=USER)
    assert cold.load_duration >= 300_000_000 and warm.load_duration < 50_000_000
    assert cold.total_duration >= cold.load_duration + cold.prompt_eval_duration + cold.eval_duration
    oc.chat(model="qwen2.5-coder:7b", messages=[])   # loads it
    assert oc.generate(model="qwen2.5-coder:7b", prompt="hi").load_duration < 50_000_000
    assert [m.model for m in oc.ps().models] == ["llama3.2:latest", "qwen2.5-coder:7b"]


def test_ollama_generate(oll, oc):
    parts = list(oc.generate(model="llama3.2", prompt="why is the sky blue", stream=True))
    assert "".join(p.response for p in parts) == oll.expected_text()
    assert parts[-1].context and parts[0].context is None and parts[-1].done_reason == "stop"
    r = oc.generate(model="llama3.2", prompt="hi", options={"num_predict": 2})
    assert (r.response, r.done_reason) == (oll.expected_text(2), "length")
    assert oc.generate(model="llama3.2", prompt="").done_reason == "load"


def test_ollama_list_show_ps(oll, oc):
    names = [m.model for m in oc.list().models]
    assert names == ["llama3.2:latest", "llama3.2:3b", "qwen2.5-coder:7b", "qwen3:4b",
                     "nomic-embed-text:latest", "all-minilm:latest"]
    first = oc.list().models[0]
    assert first.modified_at.utcoffset() is not None and not first.digest.startswith("sha256:")
    tags = httpx.get(oll.url + "/api/tags").json()["models"]
    assert tags[4]["capabilities"] == ["embedding"] and tags[0]["capabilities"] == ["completion", "tools"]
    assert tags[3]["capabilities"] == ["completion", "tools", "thinking"]
    show = oc.show("llama3.2")
    assert show.modelinfo["general.architecture"] == "llama" and "completion" in show.capabilities
    assert oc.show("all-minilm").capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as ei:
        oc.show("nope")
    assert ei.value.status_code == 404 and ei.value.error == "model 'nope:latest' not found"
    assert oc.ps().models == []
    oc.chat(model="llama3.2", messages=USER)
    assert [m.model for m in oc.ps().models] == ["llama3.2:latest"]


def test_ollama_embed(oll, oc):
    r = oc.embed(model="nomic-embed-text", input=["alpha", "beta", "alpha"])
    a, b, a2 = r.embeddings
    assert len(a) == 768 and a == a2 and a != b
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-9 for v in (a, b))
    assert a == oll.embedding("alpha")
    assert len(oc.embed(model="all-minilm", input="x").embeddings[0]) == 384
    short = oc.embed(model="nomic-embed-text", input="x", dimensions=64).embeddings[0]
    assert len(short) == 64 and abs(math.sqrt(sum(x * x for x in short)) - 1) < 1e-9
    assert oc.embed(model="all-minilm", input=[]).embeddings == []
    legacy = oc.embeddings(model="all-minilm", prompt="alpha").embedding
    assert len(legacy) == 384 and math.sqrt(sum(x * x for x in legacy)) > 2
    assert oll.embed_texts == ["alpha", "beta", "alpha", "x", "x", "alpha"]
    with pytest.raises(ollama.ResponseError) as ei:
        oc.embed(model="mxbai", input="x")
    assert ei.value.status_code == 404 and ei.value.error == 'model "mxbai" not found, try pulling it first'


def test_ollama_client_errors(oll, oc):
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="llama3.3", messages=USER)
    assert ei.value.status_code == 404 and "not found" in ei.value.error
    with pytest.raises(ollama.ResponseError) as ei:
        list(oc.chat(model="llama3.3", messages=USER, stream=True))
    assert ei.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="all-minilm", messages=USER)
    assert (ei.value.status_code, ei.value.error) == (400, '"all-minilm" does not support chat')
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="llama3.2", messages=USER, think=True)
    assert ei.value.error == '"llama3.2" does not support thinking'
    r = httpx.post(oll.url + "/api/chat", json={"messages": USER})
    assert (r.status_code, r.json()) == (400, {"error": "model is required"})
    r = httpx.post(oll.url + "/api/chat", content=b"not json")
    assert r.status_code == 400 and "invalid character" in r.json()["error"]
    r = httpx.post(oll.url + "/api/chat")
    assert r.json() == {"error": "missing request body"}


# ---------------------------------------------------------------- Ollama: faults

def test_ollama_error_mid_stream(oll, oc):
    oll.set(fault="error_mid_stream", fault_after=3)
    got = []
    with pytest.raises(ollama.ResponseError) as ei:
        for c in oc.chat(model="llama3.2", messages=USER, stream=True):
            got.append(c.message.content)
    assert ei.value.status_code == -1 and "error was encountered" in ei.value.error
    assert "".join(got) == oll.expected_text(3)
    oll.set(error_text="<script>x</script> hostile")  # what a hostile server controls
    with pytest.raises(ollama.ResponseError) as ei:
        list(oc.chat(model="llama3.2", messages=USER, stream=True))
    assert ei.value.error == "<script>x</script> hostile"
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="llama3.2", messages=USER, stream=False)
    assert ei.value.status_code == 500 and ei.value.error == "<script>x</script> hostile"


def test_ollama_error_before_any_output_is_a_status_since_0_12_6(oll, oc):
    """routes.go: an error before the first byte is a real status with a JSON body; a server
    older than v0.12.6 sent it as a 200 stream holding one error line."""
    oll.set(fault="error_mid_stream", fault_after=0)
    with pytest.raises(ollama.ResponseError) as ei:
        list(oc.chat(model="llama3.2", messages=USER, stream=True))
    assert (ei.value.status_code, ei.value.error) == (500, "an error was encountered while running the model")
    oll.set(version="0.12.5")
    with pytest.raises(ollama.ResponseError) as ei:
        list(oc.chat(model="llama3.2", messages=USER, stream=True))
    assert (ei.value.status_code, ei.value.error) == (-1, "an error was encountered while running the model")


def test_ollama_cloud_model_on_a_server_not_signed_in(oll, oc):
    oll.set(fault="unauthorized_401")
    with pytest.raises(ollama.ResponseError) as ei:
        list(oc.chat(model="gpt-oss:120b-cloud", messages=USER, stream=True))
    assert (ei.value.status_code, ei.value.error) == (401, "unauthorized")
    r = httpx.post(oll.url + "/api/chat", json={"model": "gpt-oss:120b-cloud", "messages": USER})
    assert r.json()["signin_url"].startswith("https://ollama.com/connect?")


def test_ollama_drop_and_malformed(oll, oc):
    oll.set(fault="drop_mid_stream", fault_after=2)
    got = []
    with pytest.raises(httpx.HTTPError):
        for c in oc.chat(model="llama3.2", messages=USER, stream=True):
            got.append(c.message.content)
    assert "".join(got) == oll.expected_text(2)
    oll.set(fault="malformed_line")
    with pytest.raises(json.JSONDecodeError):
        list(oc.generate(model="llama3.2", prompt="hi", stream=True))


def test_ollama_http_faults_and_fail_times(oll, oc):
    oll.set(fault="http_500_html")
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="llama3.2", messages=USER)
    assert ei.value.status_code == 500 and "<html>" in ei.value.error
    oll.set(fault="busy_503", fail_times=1)
    with pytest.raises(ollama.ResponseError) as ei:
        oc.chat(model="llama3.2", messages=USER)
    assert ei.value.status_code == 503 and "server busy" in ei.value.error
    assert oc.chat(model="llama3.2", messages=USER).message.content == oll.expected_text()
    assert oc.list().models   # faults only hit the inference routes


def test_ollama_hang_and_slow_headers():
    with OllamaPeer(fault="hang") as peer:
        with pytest.raises(httpx.ReadTimeout):
            ollama.Client(host=peer.url, timeout=0.3).chat(model="llama3.2", messages=USER)
        t = time.monotonic()
    assert time.monotonic() - t < 2   # stop() did not wait for the hung request
    with OllamaPeer(fault="slow_headers", first_token_delay=0.2) as peer:
        t = time.monotonic()
        r = ollama.Client(host=peer.url).chat(model="llama3.2", messages=USER)
        assert time.monotonic() - t >= 0.2 and r.message.content == peer.expected_text()


def test_ollama_client_disconnect_is_counted(oll, oc):
    oll.set(token_delay=0.05)
    stream = oc.chat(model="llama3.2", messages=USER, stream=True)
    assert [next(stream).message.content for _ in range(2)] == ["word0", " word1"]
    stream.close()
    assert oll.wait_until(lambda p: p.disconnects == 1, timeout=2)
    assert oll.completed == 0


def test_ollama_stopped_peer_refuses():
    peer = OllamaPeer().start()
    client = ollama.Client(host=peer.url)
    assert client.list().models
    peer.stop()
    with pytest.raises(ConnectionError):
        client.list()


# ---------------------------------------------------------------- Anthropic

def test_anthropic_stream(ant, ac):
    with ac.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=USER,
                            system="Be brief") as s:
        assert "".join(s.text_stream) == ant.expected_text()
        msg = s.get_final_message()
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 12
    assert msg.usage.input_tokens == 5 and msg.model == "claude-haiku-4-5-20251001"
    assert msg.id.startswith("msg_01") and ant.completed == 1
    rec = ant.requests[-1]
    assert rec.body["system"] == "Be brief" and rec.body["stream"] is True
    assert rec.headers["anthropic-version"] and rec.headers["authorization"] == f"Bearer {ant.api_key}"


def test_anthropic_max_tokens_and_create(ant, ac):
    with ac.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=USER) as s:
        assert "".join(s.text_stream) == ant.expected_text(5)
        msg = s.get_final_message()
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 5
    msg = ac.messages.create(model="claude-opus-4-6", max_tokens=50, messages=USER,
                             system=[{"type": "text", "text": "one two"}],
                             extra_body={"temperature": 0.2})
    assert msg.content[0].text == ant.expected_text() and msg.stop_reason == "end_turn"
    assert msg.stop_sequence is None and msg.usage.input_tokens == 5
    assert ant.requests[-1].body["temperature"] == 0.2


def test_anthropic_raw_event_sequence(ant):
    ant.set(tokens=2)
    r = httpx.post(ant.url + "/v1/messages", json={"model": "claude-opus-4-6", "max_tokens": 9,
                                                   "messages": USER, "stream": True},
                   headers={"x-api-key": ant.api_key, "anthropic-version": "2023-06-01"})
    assert r.headers["content-type"].startswith("text/event-stream") and r.headers["request-id"]
    events = [b.split("\n") for b in r.text.strip().split("\n\n")]
    assert all(e[0].startswith("event: ") and e[1].startswith("data: ") for e in events)
    names = [e[0][7:] for e in events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = json.loads(events[0][1][6:])["message"]
    assert start["usage"]["output_tokens"] == 1 and start["content"] == []


def test_anthropic_auth_and_validation(ant):
    bad = anthropic.Anthropic(base_url=ant.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        bad.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER)
    assert ei.value.status_code == 401 and ei.value.request_id.startswith("req_")
    assert ei.value.body["error"]["type"] == "authentication_error"
    base = {"model": "claude-opus-4-6", "max_tokens": 5, "messages": USER}
    r = httpx.post(ant.url + "/v1/messages", json=base, headers={"x-api-key": ant.api_key})
    assert r.status_code == 400 and r.json()["error"]["message"] == "anthropic-version: header is required"
    hdrs = {"x-api-key": ant.api_key, "anthropic-version": "2023-06-01"}
    r = httpx.post(ant.url + "/v1/messages", json={**base, "max_tokens": 0}, headers=hdrs)
    assert r.status_code == 400
    r = httpx.post(ant.url + "/v1/messages", json={"model": "claude-opus-4-6", "messages": USER},
                   headers=hdrs)
    assert r.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_anthropic_unknown_model(ant, ac):
    with pytest.raises(anthropic.NotFoundError) as ei:
        ac.messages.create(model="claude-nope", max_tokens=5, messages=USER)
    assert ei.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nope"}


def test_anthropic_rate_limit_retried(ant):
    ant.set(fault="rate_limit", fail_times=1)
    client = anthropic.Anthropic(base_url=ant.url, api_key=ant.api_key, max_retries=2)
    msg = client.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER)
    assert msg.content[0].text == ant.expected_text(5)
    assert len(ant.requests) == 2
    assert [r.headers["x-stainless-retry-count"] for r in ant.requests] == ["0", "1"]


def test_anthropic_status_faults(ant, ac):
    ant.set(fault="overloaded")
    with pytest.raises(anthropic.APIStatusError) as ei:
        ac.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER)
    assert ei.value.status_code == 529 and isinstance(ei.value, anthropic.InternalServerError)
    assert ei.value.body["error"]["type"] == "overloaded_error"
    for fault, cls in [("forbidden", anthropic.PermissionDeniedError),
                       ("too_large", anthropic.ContentTooLargeError),
                       ("server_error", anthropic.InternalServerError),
                       ("html", anthropic.InternalServerError)]:
        ant.set(fault=fault)
        with pytest.raises(cls):
            ac.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER)
    ant.set(fault="rate_limit", retry_after="7")
    with pytest.raises(anthropic.RateLimitError) as ei:
        ac.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER)
    assert ei.value.response.headers["retry-after"] == "7"


def test_anthropic_error_mid_stream(ant, ac):
    ant.set(fault="error_mid_stream", fault_after=3)
    got = []
    with pytest.raises(anthropic.APIStatusError) as ei:
        with ac.messages.stream(model="claude-opus-4-6", max_tokens=50, messages=USER) as s:
            got.extend(s.text_stream)
    assert ei.value.status_code == 200 and ei.value.body["error"]["type"] == "overloaded_error"
    assert "".join(got) == ant.expected_text(3)


def test_anthropic_drop_mid_stream(ant, ac):
    ant.set(fault="drop_mid_stream", fault_after=2)
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        with ac.messages.stream(model="claude-opus-4-6", max_tokens=50, messages=USER) as s:
            list(s.text_stream)


def test_anthropic_models_and_count_tokens(ant, ac):
    ids = [m.id for m in ac.models.list(limit=2)]
    assert ids == ["claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-5-20251101",
                   "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]
    assert [r.query for r in ant.requests_to("/v1/models")] == [
        {"limit": "2"}, {"limit": "2", "after_id": "claude-opus-4-6"},
        {"limit": "2", "after_id": "claude-haiku-4-5-20251001"}]
    page = ac.models.list(limit=2, before_id="claude-haiku-4-5-20251001")
    assert [m.id for m in page.data] == ["claude-opus-4-6", "claude-opus-4-5-20251101"] and page.has_more
    first = ac.models.list().data[0]
    assert first.display_name == "Claude Sonnet 4.6" and first.created_at.year == 2026
    assert ac.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"
    n = ac.messages.count_tokens(model="claude-opus-4-6", system="a b",
                                 messages=[{"role": "user", "content": "c d e"}])
    assert n.input_tokens == 5


def test_anthropic_client_disconnect_is_counted(ant, ac):
    ant.set(token_delay=0.05)
    with ac.messages.stream(model="claude-opus-4-6", max_tokens=50, messages=USER) as s:
        it = iter(s.text_stream)
        assert [next(it), next(it)] == ["word0", " word1"]
    assert ant.wait_until(lambda p: p.disconnects == 1, timeout=2)
    assert ant.completed == 0


# ---------------------------------------------------------------- standalone

def test_standalone_main():
    proc = subprocess.Popen([sys.executable, "-m", "tests.peers", "--tokens", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        o_line, a_line = proc.stdout.readline(), proc.stdout.readline()
        assert o_line.startswith("ollama peer: http://127.0.0.1:")
        assert a_line.startswith("anthropic peer: http://127.0.0.1:") and "sk-ant-peer-test-key" in a_line
        url = o_line.split()[2]
        r = ollama.Client(host=url).chat(model="llama3.2", messages=USER)
        assert r.message.content == "word0 word1 word2"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


def test_ollama_thinking_model_streams_thinking_first_unless_think_is_false(oll, oc):
    chunks = list(oc.chat(model="qwen3:4b", messages=[{"role": "user", "content": "hi"}], stream=True))
    thinking = "".join(c.message.thinking or "" for c in chunks)
    first_text = next(i for i, c in enumerate(chunks) if c.message.content)
    assert thinking == oll.knobs["thinking"] and all(not c.message.thinking for c in chunks[first_text:])
    quiet = list(oc.chat(model="qwen3:4b", messages=[{"role": "user", "content": "hi"}], stream=True, think=False))
    assert not any(c.message.thinking for c in quiet)
    with pytest.raises(ollama.ResponseError, match="does not support thinking"):
        oc.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}], think=True)
