"""The OpenAI-compatible peer speaks the wire protocol faithfully: proven with the official
`openai` client (plus raw HTTP where the client hides the wire)."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import pytest

from tests.peers import OpenAIPeer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = [{"role": "user", "content": "Say something short"}]
MODEL = "qwen2.5-7b-instruct"


@pytest.fixture(scope="module")
def peer():
    with OpenAIPeer() as p:
        yield p


@pytest.fixture(autouse=True)
def _fresh(peer):
    """Every test starts from default knobs and empty records."""
    peer.reset()


@pytest.fixture
def client(peer):
    return openai.OpenAI(base_url=peer.base_url, api_key="x", max_retries=0, timeout=10)


def stream_chat(client, **kw):
    return client.chat.completions.create(model=MODEL, messages=USER, stream=True, **kw)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


# ---------------------------------------------------------------- chat

def test_streaming_chat(peer, client):
    chunks = list(stream_chat(client))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == peer.expected_text()
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content is None
    assert len(chunks) == 1 + 12 + 1 and all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert last.choices[0].finish_reason == "stop" and last.choices[0].delta.content is None
    assert last.usage is None and last.timings["predicted_n"] == 12
    assert len({c.id for c in chunks}) == 1 and first.id.startswith("chatcmpl-")
    assert first.object == "chat.completion.chunk" and first.model == MODEL
    assert first.system_fingerprint == "b0-peer" and isinstance(first.created, int)
    assert peer.completed == 1
    rec = peer.requests_to("/v1/chat/completions")[-1]
    assert rec.body["stream"] is True and rec.body["messages"] == USER
    assert rec.headers["authorization"] == "Bearer x"


def test_include_usage_and_timings(peer, client):
    peer.set(token_delay=0.01, tokens=5)
    chunks = list(stream_chat(client, stream_options={"include_usage": True}))
    *_, finish, tail = chunks
    assert finish.choices[0].finish_reason == "stop" and "timings" not in (finish.model_extra or {})
    assert tail.choices == []
    assert (tail.usage.prompt_tokens, tail.usage.completion_tokens, tail.usage.total_tokens) == (3, 5, 8)
    t = tail.timings
    assert (t["prompt_n"], t["predicted_n"]) == (3, 5)
    assert t["predicted_ms"] >= 4 * 10 * 0.9   # four 10 ms gaps between five tokens
    assert t["predicted_per_second"] == pytest.approx(5e3 / t["predicted_ms"])


def test_finish_reason_length(peer, client):
    chunks = list(stream_chat(client, max_tokens=4))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == peer.expected_text(4)
    assert chunks[-1].choices[0].finish_reason == "length"
    r = client.chat.completions.create(model=MODEL, messages=USER, max_completion_tokens=3)
    assert r.choices[0].message.content == peer.expected_text(3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3


def test_non_streaming_create(peer, client):
    r = client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": [{"type": "text", "text": "Say something short"}]}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == MODEL
    msg = r.choices[0].message
    assert (msg.role, msg.content) == ("assistant", peer.expected_text())
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (5, 12, 17)
    assert r.timings["predicted_n"] == 12
    assert peer.requests[-1].body.get("stream") is None


def test_json_mode(peer, client):
    for fmt in ({"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}):
        r = client.chat.completions.create(model=MODEL, messages=USER, response_format=fmt)
        assert json.loads(r.choices[0].message.content) == {"answer": peer.expected_text()}
        text = "".join(c.choices[0].delta.content or "" for c in stream_chat(client, response_format=fmt))
        assert text == peer.expected_text(json=True)


def test_reasoning_content_first(peer, client):
    peer.set(reasoning="Let me think about it.")
    chunks = list(stream_chat(client))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    kinds = ["r" if getattr(d, "reasoning_content", None) else "c" if d.content else "-" for d in deltas]
    assert "".join(kinds).strip("-") == "r" * 5 + "c" * 12
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Let me think about it."
    assert "".join(d.content or "" for d in deltas) == peer.expected_text()
    r = client.chat.completions.create(model=MODEL, messages=USER)
    assert r.choices[0].message.reasoning_content == "Let me think about it."
    assert r.choices[0].message.content == peer.expected_text() and r.usage.completion_tokens == 17


def test_models_list(peer, client):
    models = client.models.list().data
    assert [m.id for m in models] == ["gemma-3-270m", "qwen2.5-7b-instruct", "nomic-embed-text-v1.5"]
    assert all(m.object == "model" and m.owned_by == "llamacpp" and isinstance(m.created, int)
               for m in models)
    peer.set(models=["only-one"])
    assert [m.id for m in client.models.list()] == ["only-one"]


# ---------------------------------------------------------------- embeddings

def test_embeddings(peer, client):
    r = client.embeddings.create(model="nomic-embed-text-v1.5", input=["alpha", "beta", "alpha"])
    a, b, a2 = (d.embedding for d in r.data)
    assert [d.index for d in r.data] == [0, 1, 2] and r.model == "nomic-embed-text-v1.5"
    assert len(a) == 768 and a == a2 and a != b
    assert all(abs(norm(v) - 1) < 1e-5 for v in (a, b))          # float32 over base64
    assert a == pytest.approx(peer.embedding("alpha"), abs=1e-6)
    assert peer.requests[-1].body["encoding_format"] == "base64"  # the client's default
    r = client.embeddings.create(model="nomic-embed-text-v1.5", input="one two", encoding_format="float")
    assert r.data[0].embedding == peer.embedding("one two")
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (2, 2)
    assert peer.embed_texts == ["alpha", "beta", "alpha", "one two"]


def test_embeddings_disabled(peer, client):
    peer.set(embeddings=False)
    with pytest.raises(openai.APIStatusError) as ei:
        client.embeddings.create(model="nomic-embed-text-v1.5", input="x")
    assert ei.value.status_code == 501 and ei.value.body["type"] == "not_supported_error"
    assert "--embeddings" in ei.value.body["message"]


# ---------------------------------------------------------------- errors

def test_auth(peer):
    peer.set(api_key="sk-peer")
    bad = openai.OpenAI(base_url=peer.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model=MODEL, messages=USER)
    assert ei.value.status_code == 401 and ei.value.code == "invalid_api_key"
    assert ei.value.body["message"] == "Incorrect API key provided"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    good = openai.OpenAI(base_url=peer.base_url, api_key="sk-peer", max_retries=0)
    assert good.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content


def test_unknown_model_and_validation(peer, client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="gpt-9", messages=USER)
    assert ei.value.code == "model_not_found"
    assert ei.value.body["message"] == "The model `gpt-9` does not exist"
    peer.set(any_model=True)
    assert client.chat.completions.create(model="gpt-9", messages=USER).model == "gpt-9"
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=MODEL, messages=[])
    assert ei.value.body == {"message": "'messages' is required", "type": "invalid_request_error",
                             "param": None, "code": None}
    r = httpx.get(peer.base_url + "/nope")
    assert (r.status_code, r.json()) == (404, {"error": {"message": "File Not Found",
                                                          "type": "not_found_error", "code": 404}})
    assert httpx.get(peer.base_url + "/chat/completions").status_code == 404


def test_rate_limit_retried(peer):
    peer.set(fault="rate_limit", fail_times=1)
    client = openai.OpenAI(base_url=peer.base_url, api_key="x", max_retries=2)
    r = client.chat.completions.create(model=MODEL, messages=USER)
    assert r.choices[0].message.content == peer.expected_text()
    assert len(peer.requests) == 2
    assert [q.headers["x-stainless-retry-count"] for q in peer.requests] == ["0", "1"]
    peer.set(fault="rate_limit", retry_after="7")
    with pytest.raises(openai.RateLimitError) as ei:
        openai.OpenAI(base_url=peer.base_url, api_key="x", max_retries=0).chat.completions.create(
            model=MODEL, messages=USER)
    assert ei.value.response.headers["retry-after"] == "7" and ei.value.code == "rate_limit_exceeded"


def test_status_faults(peer, client):
    peer.set(fault="loading_503")
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert ei.value.status_code == 503 and ei.value.body["message"] == "Loading model"
    assert client.models.list().data   # faults only hit chat and embeddings
    for fault in ("server_error", "html"):
        peer.set(fault=fault)
        with pytest.raises(openai.InternalServerError) as ei:
            client.embeddings.create(model="nomic-embed-text-v1.5", input="x")
        assert ei.value.status_code == 500


def test_error_mid_stream(peer, client):
    peer.set(fault="error_mid_stream", fault_after=3)
    got = []
    with pytest.raises(openai.APIError) as ei:
        for c in stream_chat(client):
            got.append(c.choices[0].delta.content or "")
    assert ei.value.body["type"] == "server_error" and "error occurred" in ei.value.message
    assert "".join(got) == peer.expected_text(3) and peer.completed == 0


def test_reported_model_and_error_text_knobs(peer, client):
    """What a hostile or aliasing server controls: the model it reports and its error message."""
    peer.set(reply_model="gpt-x-2026-01-01", tokens=3)
    assert {c.model for c in stream_chat(client)} == {"gpt-x-2026-01-01"}
    assert client.chat.completions.create(model=MODEL, messages=USER).model == "gpt-x-2026-01-01"
    peer.set(fault="error_mid_stream", fault_after=1, error_text="<b>hostile</b> message")
    with pytest.raises(openai.APIError) as ei:
        list(stream_chat(client))
    assert ei.value.message == "<b>hostile</b> message" and ei.value.body["type"] == "server_error"


def test_drop_mid_stream(peer, client):
    peer.set(fault="drop_mid_stream", fault_after=2)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for c in stream_chat(client):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == peer.expected_text(2)


def test_malformed_line_on_the_wire(peer, client):
    peer.set(fault="malformed_line", fault_after=1, tokens=2)
    with httpx.stream("POST", peer.base_url + "/chat/completions",
                      json={"model": MODEL, "messages": USER, "stream": True}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = r.read().decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert events[2] == "data: {not json"   # role, word0, garbage, word1, finish
    assert [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events[3:5]] == [" word1", None]
    peer.set(fault="malformed_line", fail_times=None)
    with pytest.raises(json.JSONDecodeError):
        list(stream_chat(client))


def test_hang_and_slow_headers():
    with OpenAIPeer(fault="hang") as p:
        c = openai.OpenAI(base_url=p.base_url, api_key="x", max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            c.chat.completions.create(model=MODEL, messages=USER)
        t = time.monotonic()
    assert time.monotonic() - t < 2
    with OpenAIPeer(fault="slow_headers", first_token_delay=0.2) as p:
        c = openai.OpenAI(base_url=p.base_url, api_key="x", max_retries=0)
        t = time.monotonic()
        r = c.chat.completions.create(model=MODEL, messages=USER)
        assert time.monotonic() - t >= 0.2 and r.choices[0].message.content == p.expected_text()


def test_client_disconnect_is_counted(peer, client):
    peer.set(token_delay=0.05)
    stream = stream_chat(client)
    it = iter(stream)
    assert [next(it).choices[0].delta.content for _ in range(3)] == [None, "word0", " word1"]
    stream.close()
    assert peer.wait_until(lambda p: p.disconnects == 1, timeout=2)
    assert peer.completed == 0


# ---------------------------------------------------------------- standalone

def test_standalone_main_prints_openai_third():
    proc = subprocess.Popen([sys.executable, "-m", "tests.peers", "--tokens", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("ollama peer: http://127.0.0.1:")
        assert lines[1].startswith("anthropic peer: http://127.0.0.1:")
        assert lines[2].startswith("openai peer: http://127.0.0.1:") and lines[2].rstrip().endswith("/v1")
        c = openai.OpenAI(base_url=lines[2].split()[2], api_key="x", max_retries=0)
        r = c.chat.completions.create(model=MODEL, messages=USER)
        assert r.choices[0].message.content == "word0 word1 word2"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err


# ---------------------------------------------------------------- real servers' dialects

def test_reasoning_field_knob(peer, client):
    """Ollama's /v1 and vLLM >= 0.11 name the thinking `reasoning` (vLLM's docs: "reasoning used
    to be called reasoning_content"); the SDK keeps it as an extra field."""
    peer.set(reasoning="Let me think.", reasoning_field="reasoning", tokens=2)
    deltas = [c.choices[0].delta for c in stream_chat(client) if c.choices]
    assert "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas) == "Let me think."
    assert not any((d.model_extra or {}).get("reasoning_content") for d in deltas)
    message = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message
    assert message.model_extra["reasoning"] == "Let me think." and "reasoning_content" not in message.model_extra


def test_vllm_tool_call_style(peer, client):
    """vLLM's tool parsers open a call with only its name (DeltaFunctionCall(name=...) dumped
    exclude_none, chunks dumped exclude_unset): no `arguments` in the first piece."""
    peer.set(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], tool_call_style="vllm")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    pieces = [t for c in stream_chat(client, tools=tools) if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert pieces[0].function.name == "get_weather" and pieces[0].function.arguments is None and pieces[0].id
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"city": "Paris"}
    raw = httpx.post(peer.base_url + "/chat/completions", json={"model": MODEL, "messages": USER, "stream": True,
                                                                 "tools": tools}).text
    assert '"function": {"name": "get_weather"}}' in raw.replace('":', '": ').replace(",", ", ")


def test_old_llama_server_error_field(peer, client):
    """llama-server before PR #16109 (Sept. 2025) wrote a failed generation as an `error:` SSE
    field, then `data: [DONE]`: the SDK, reading only `data:`, sees a clean end."""
    peer.set(fault="error_mid_stream", fault_after=3, error_field=True)
    got = [c.choices[0].delta.content or "" for c in stream_chat(client)]
    assert "".join(got) == peer.expected_text(3)
    raw = httpx.post(peer.base_url + "/chat/completions", json={"model": MODEL, "messages": USER, "stream": True}).text
    assert '\n\nerror: {"message": "an error occurred while generating"' in raw.replace('":', '": ')
    assert raw.endswith("data: [DONE]\n\n")


def test_reject_max_tokens_knob(peer, client):
    """OpenAI's o-series and gpt-5 models: max_tokens is refused, max_completion_tokens is taken."""
    peer.set(reject_max_tokens=True, tokens=10)
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=MODEL, messages=USER, max_tokens=3)
    assert ei.value.param == "max_tokens" and ei.value.code == "unsupported_parameter"
    assert "max_completion_tokens" in ei.value.message
    r = client.chat.completions.create(model=MODEL, messages=USER, max_completion_tokens=3)
    assert r.choices[0].finish_reason == "length"


def test_refusal_knob(peer, client):
    peer.set(refusal="I'm sorry, I can't help with that.")
    deltas = [c.choices[0].delta for c in stream_chat(client) if c.choices]
    assert "".join(d.refusal or "" for d in deltas) == "I'm sorry, I can't help with that."
    assert not "".join(d.content or "" for d in deltas)
    message = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message
    assert message.refusal == "I'm sorry, I can't help with that." and message.content is None
